//! Shell semantics end to end: builtins, wasm guests as commands, pipes,
//! redirections, expansions, control flow, exit statuses.

mod common;

use common::*;
use sandbox::{SandboxError, ScriptError};

fn fixture() -> Fixture {
    let mut f = Fixture::new();
    f.asset("wcat", &wat_cat()).asset("exit7", &wat_exit(7));
    f
}

#[tokio::test]
async fn pipeline_of_wasm_stages_passes_bytes_through() {
    let f = fixture();
    let input: Vec<u8> = (0..200_000u32)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let r = f.run("wcat | wcat | wcat", &input).await;
    assert!(r.success(), "{r:?}");
    assert_eq!(r.stdout.as_deref(), Some(&input[..]));
    assert_eq!(r.stdout_bytes, input.len() as u64);
}

#[tokio::test]
async fn exit_status_is_the_last_stage_and_pipefail_changes_it() {
    let f = fixture();
    assert_eq!(f.run("exit7 | wcat", b"").await.exit_status, 0);
    assert_eq!(f.run("wcat | exit7", b"").await.exit_status, 7);
    assert_eq!(
        f.run("set -o pipefail; exit7 | wcat", b"")
            .await
            .exit_status,
        7
    );
    assert_eq!(f.run("! exit7", b"").await.exit_status, 0);
}

#[tokio::test]
async fn and_or_lists_and_exit() {
    let f = fixture();
    let r = f
        .run(
            "false || echo a; true && echo b; false && echo no; exit7 || echo $?",
            b"",
        )
        .await;
    assert_eq!(stdout(&r), "a\nb\n7\n");
    let r = f.run("echo before; exit 3; echo after", b"").await;
    assert_eq!((r.exit_status, stdout(&r).as_str()), (3, "before\n"));
    let r = f.run("set -e; echo x; false; echo y", b"").await;
    assert_eq!((r.exit_status, stdout(&r).as_str()), (1, "x\n"));
}

#[tokio::test]
async fn variables_quoting_and_substitution() {
    let f = fixture();
    let r = f
        .run(r#"x='a  b'; echo $x; echo "$x"; echo ${x}!; echo ${unset:-dflt}; y=$(echo hi | wcat); echo "[$y]" `echo bq`"#, b"")
        .await;
    assert_eq!(stdout(&r), "a b\na  b\na b!\ndflt\n[hi] bq\n");
    let r = f
        .run(
            "A=1; export B=2; echo $A$B; unset A; echo \"${A-gone}\"",
            b"",
        )
        .await;
    assert_eq!(stdout(&r), "12\ngone\n");
}

#[tokio::test]
async fn control_flow() {
    let f = fixture();
    let r = f
        .run("for i in 1 2 3; do if [ $i = 2 ]; then echo two; elif [[ $i == 3 ]]; then echo three; else echo $i; fi; done", b"")
        .await;
    assert_eq!(stdout(&r), "1\ntwo\nthree\n");
    let r = f
        .run("while read -r line; do echo \"<$line>\"; done", b"a b\nc\n")
        .await;
    assert_eq!(stdout(&r), "<a b>\n<c>\n");
    let r = f
        .run("x=; until [ -n \"$x\" ]; do x=done; done; echo $x", b"")
        .await;
    assert_eq!(stdout(&r), "done\n");
    let r = f
        .run(
            "(x=in; echo $x); echo \"${x:-out}\"; { echo g1; echo g2; } | wcat",
            b"",
        )
        .await;
    assert_eq!(stdout(&r), "in\nout\ng1\ng2\n");
}

#[tokio::test]
async fn redirections_stay_in_scratch() {
    let f = fixture();
    let r = f.run("echo one > f; echo two >> f; wcat < f; echo err 1>&2 2>/dev/null; echo e2 2>&1 >/dev/null", b"").await;
    assert_eq!(stdout(&r), "one\ntwo\n");
    assert_eq!(String::from_utf8_lossy(&r.stderr), "err\n");
    assert_eq!(std::fs::read(f.scratch().join("f")).unwrap(), b"one\ntwo\n");
    // `..` cannot climb out of scratch: this lands in scratch/escape.
    let r = f.run("echo x > ../../escape; wcat < /escape", b"").await;
    assert_eq!(stdout(&r), "x\n");
    assert!(f.scratch().join("escape").is_file());
    assert!(!f.dir.path().join("escape").exists());
}

#[tokio::test]
async fn xargs_runs_the_command_per_batch() {
    let f = fixture();
    let r = f.run("xargs -n 2 echo", b"a b c\nd e").await;
    assert_eq!(stdout(&r), "a b\nc d\ne\n");
    let r = f.run("xargs -I{} echo '<{}>'", b"x\ny\n").await;
    assert_eq!(stdout(&r), "<x>\n<y>\n");
    let r = f.run("xargs exit7", b"a").await;
    assert_eq!(r.exit_status, 123);
}

#[tokio::test]
async fn unknown_commands_and_host_programs_are_not_found() {
    let f = fixture();
    // A path names a file in the guest's tree (scratch), never the host's.
    let r = f.run("/bin/sh -c 'echo pwned'; echo $?", b"").await;
    assert_eq!(stdout(&r), "127\n");
    assert!(String::from_utf8_lossy(&r.stderr).contains("No such file"));
}

#[tokio::test]
async fn unsupported_constructs_are_rejected_before_running() {
    let f = fixture();
    let spec = f.spec("echo x > marker; case x in x) echo;; esac");
    match sandbox::Sandbox::run_phase(sandbox(), spec).await {
        Err(SandboxError::Script(ScriptError::Unsupported { construct, .. })) => {
            assert!(construct.contains("case"))
        }
        other => panic!("expected rejection, got {other:?}"),
    }
    assert!(
        !f.scratch().join("marker").exists(),
        "nothing may run before rejection"
    );
}

#[tokio::test]
async fn traps_are_reported_as_core_dumps() {
    let mut f = fixture();
    f.asset(
        "boom",
        r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#,
    );
    let r = f.run("boom; echo $?", b"").await;
    assert_eq!(stdout(&r), "134\n");
    assert_eq!(r.traps.len(), 1);
    assert!(String::from_utf8_lossy(&r.stderr).contains("core dumped"));
}

#[tokio::test]
async fn background_jobs_wait_and_kill() {
    let f = fixture();
    let r = f
        .run(
            "echo a > f1 & echo b > f2 & wait; cat f1 f2; (exit 7) & wait $!; echo $?",
            b"",
        )
        .await;
    assert_eq!(stdout(&r), "a\nb\n7\n", "{r:?}");
    // A killed job's status is 128 + the signal; unknown jobs are errors.
    let r = f
        .run(
            "( while :; do :; done ) & kill %1; wait %1; echo $?; kill -9 %1; echo $?; wait 4242; echo $?",
            b"",
        )
        .await;
    assert_eq!(stdout(&r), "143\n1\n127\n", "{r:?}");
    // A job's stdin is empty (no job control), and `$!` names it.
    let r = f
        .run(
            "wcat & p=$!; wait $p; echo \"[$?]\"; [ -n \"$p\" ] && echo pid",
            b"input",
        )
        .await;
    assert_eq!(stdout(&r), "[0]\npid\n", "{r:?}");
}

#[tokio::test]
async fn background_jobs_are_bounded_and_waited_for() {
    let f = fixture();
    // Far more jobs than may run at once: the shell throttles, none is lost.
    let r = f
        .run(
            "for i in {1..100}; do (echo $i > n.$i) & done; wait; cat n.* | wc -l",
            b"",
        )
        .await;
    assert_eq!(stdout(&r).trim(), "100", "{r:?}");
    // Jobs never waited for still finish before the run ends (their
    // output is the task's), even started inside a subshell.
    let r = f
        .run(
            "( i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; echo late > l ) & echo early",
            b"",
        )
        .await;
    assert_eq!(stdout(&r), "early\n", "{r:?}");
    assert_eq!(
        std::fs::read_to_string(f.scratch().join("l"))
            .ok()
            .as_deref(),
        Some("late\n")
    );
    // Killed before the end of the run: nothing of the job is left.
    let r = f
        .run("( while :; do :; done ) & kill $!; wait; echo done", b"")
        .await;
    assert_eq!((r.exit_status, stdout(&r).as_str()), (0, "done\n"));
}

#[tokio::test]
async fn scripts_run_by_sh_bash_source_and_path() {
    let f = fixture();
    let r = f
        .run(
            "printf 'echo \"$0:$#:$1:$2\"\\n' > x.sh; sh x.sh a b; bash ./x.sh c; chmod +x x.sh; ./x.sh d e f; sh -c 'echo $0 $1' n 1",
            b"",
        )
        .await;
    assert_eq!(
        stdout(&r),
        "x.sh:2:a:b\n./x.sh:1:c:\n./x.sh:3:d:e\nn 1\n",
        "{r:?}"
    );
    // A child shell sees exported variables only; `.` runs in this shell.
    let r = f
        .run(
            "printf 'v=in; echo \"[$x][$y]\"\\n' > v.sh; x=1; export y=2; v=out; sh v.sh; echo $v; . ./v.sh; echo $v",
            b"",
        )
        .await;
    assert_eq!(stdout(&r), "[][2]\nout\n[1][2]\nin\n", "{r:?}");
    // The script reads the task's stdin; `exit` ends only the script.
    let r = f
        .run(
            "printf 'wcat; exit 4\\n' > c.sh; sh c.sh; echo $?",
            b"piped\n",
        )
        .await;
    assert_eq!(stdout(&r), "piped\n4\n", "{r:?}");
    let r = f
        .run("echo 'echo from stdin' | sh; sh missing.sh; echo $?", b"")
        .await;
    assert_eq!(stdout(&r), "from stdin\n2\n", "{r:?}");
}

#[tokio::test]
async fn script_recursion_is_bounded() {
    let f = fixture();
    let r = f
        .run(
            "printf 'echo x >> depth; sh r.sh\\n' > r.sh; sh r.sh; echo $?; wc -l < depth",
            b"",
        )
        .await;
    assert_eq!(stdout(&r), "2\n16\n", "{r:?}");
    assert!(String::from_utf8_lossy(&r.stderr).contains("nested more than"));
}

#[tokio::test]
async fn bash_isms_patterns_file_substitution_and_arithmetic() {
    let f = fixture();
    let r = f
        .run(
            "x=banana; [[ $x == [a-c]* ]] && echo y1; [[ $x == \"b*\" ]] || echo y2; \
             p='b*'; [[ $x == $p ]] && echo y3; [[ A == [[:upper:]] ]] && echo y4",
            b"",
        )
        .await;
    assert_eq!(stdout(&r), "y1\ny2\ny3\ny4\n", "{r:?}");
    let r = f
        .run(
            "printf 'a b\\n\\n\\n' > f; x=$(< f); echo \"[$x]\"; y=$(< nope); echo $?",
            b"",
        )
        .await;
    assert_eq!(stdout(&r), "[a b]\n1\n", "{r:?}");
    let r = f
        .run(
            "s=0; for ((i=1; i<=10; i++)); do s=$((s + i)); done; echo $s; ((s > 50)) && echo big; echo $((2**10 % 1000)) $((7/2))",
            b"",
        )
        .await;
    assert_eq!(stdout(&r), "55\nbig\n24 3\n", "{r:?}");
    // An arithmetic error in an expansion ends the shell, as bash's does.
    let r = f.run("echo $((1/0)); echo after", b"").await;
    assert_eq!((r.exit_status, stdout(&r).as_str()), (1, ""));
}
