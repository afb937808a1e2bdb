//! The CLI commands Manta put in every task (issue 15): `mrm`, `mmkdir`
//! and `mjob` as a task's builtins, and `msplit -j/-e/-z`, each through
//! Manta's official `mjob` against a real `tidepool up`.
//!
//! * `mrm [-r]` and `mmkdir [-p]` act as the job's owner: bob's task can
//!   neither remove alice's objects nor make directories in her tree.
//! * `mjob create` in a task starts a job of the task's owner, validated
//!   as the API validates; `get`/`outputs`/`wait` see it; jobs started
//!   from tasks nest at most three deep, and one task starts at most 16.
//! * `msplit -j -f`, `-e` (Tidepool's documented JavaScript subset; other
//!   JavaScript refused by name) and `-z` partition as Manta's msplit did.

use std::collections::BTreeSet;

use tidepool_tests::{Cluster, ok};

/// `'s'` for the task shell.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[test]
fn in_task_mrm_and_mmkdir_act_as_the_owner_only() {
    let mut c = Cluster::start().unwrap();
    let bob = c.add_tenant("bob").unwrap();
    ok(&c.manta("mmkdir", &["-p", "~~/stor/keep"]));
    c.mput("/alice/stor/keep/x", b"x\n");
    // One reducer with no inputs runs the script once.
    let script = [
        "mmkdir /alice/stor/evil 2>&1; echo mk=$?",
        "mmkdir -p /alice/stor/keep/evil 2>&1; echo mkp=$?",
        "mrm /alice/stor/keep/x 2>&1; echo rm=$?",
        "mrm -r /alice/stor/keep 2>&1; echo rmr=$?",
        "mmkdir -p ~~/stor/d/e/f; echo mkdirp=$?",
        "echo hi | mput ~~/stor/d/e/f/o",
        "mmkdir /bob/stor/d/g; echo mkdir=$?",
        "mmkdir /bob/stor/nope/g 2>&1; echo noparent=$?",
        "mls /bob/stor/d",
        "mrm /bob/stor/d 2>&1; echo notobject=$?",
        "mrm /bob/stor/d/e/f/o; echo rmobj=$?",
        "mrm /bob/stor/d/e/f/o 2>&1; echo gone=$?",
        "echo hi | mput ~~/stor/d/e/f/o2",
        "mrm -r /bob/stor/d; echo rmr2=$?",
        "mls /bob/stor/d 2>&1; echo ls=$?",
    ]
    .join("; ");
    let out = ok(&bob.manta(&c, "mjob", &["create", "-o", "-r", &script], b""));
    let lines: Vec<&str> = out.lines().collect();
    let status = |k: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k}= in {out}"))
            .to_owned()
    };
    for k in [
        "mk",
        "mkp",
        "rm",
        "rmr",
        "noparent",
        "notobject",
        "gone",
        "ls",
    ] {
        assert_eq!(status(k), "1", "{k}: {out}");
    }
    for k in ["mkdirp", "mkdir", "rmobj", "rmr2"] {
        assert_eq!(status(k), "0", "{k}: {out}");
    }
    assert!(
        out.contains("mmkdir: /alice/stor/evil: permission denied"),
        "{out}"
    );
    assert!(
        out.contains("mrm: /alice/stor/keep/x: permission denied"),
        "{out}"
    );
    assert!(out.contains("/bob/stor/d is not an object"), "{out}");
    assert!(out.contains("ResourceNotFoundError"), "{out}");
    assert!(lines.contains(&"e/") && lines.contains(&"g/"), "{out}");
    // Alice's tree is as it was; bob's directory is gone.
    assert_eq!(ok(&c.manta("mget", &["/alice/stor/keep/x"])), "x\n");
    assert_eq!(ok(&c.manta("mls", &["/alice/stor/keep"])), "x\n");
    assert!(!c.manta("mls", &["/alice/stor/evil"]).status.success());
    assert!(!bob.manta(&c, "mls", &["/bob/stor/d"], b"").status.success());
}

#[test]
fn a_task_starts_jobs_of_its_owner_through_the_api_rules() {
    let mut c = Cluster::start().unwrap();
    let bob = c.add_tenant("bob").unwrap();
    ok(&bob.manta(&c, "mput", &["/bob/stor/in"], b"one\ntwo\nthree\n"));
    let script = [
        // Started, printed, waited for, read back.
        "id=$(echo /bob/stor/in | mjob create -q -m 'wc -l')",
        "echo child=$id",
        "mjob wait $id; echo wait=$?",
        "mjob get $id",
        "mjob outputs $id | sed 's/^/out=/'",
        // -o: waits and prints the outputs' bytes.
        "echo ~~/stor/in | mjob create -q -o -m 'grep t' -r 'wc -l' | sed 's/^/cat=/'",
        // The API's validation: limits and phase scripts.
        "true | mjob create --memory 3 -m wc 2>&1; echo mem=$?",
        "true | mjob create -m 'if then' 2>&1; echo script=$?",
        // Four starts so far (refused ones count): the 17th is refused.
        "for i in 5 6 7 8 9 10 11 12 13 14 15 16 17 18; do r=$(true | mjob create -q -m wc 2>&1) || echo \"cap=$i $r\"; done",
    ]
    .join("\n");
    let out = ok(&bob.manta(&c, "mjob", &["create", "-o", "-r", &script], b""));
    let child = out
        .lines()
        .find_map(|l| l.strip_prefix("child="))
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    assert!(out.contains("wait=0"), "{out}");
    assert!(out.contains("\"state\":\"done\""), "{out}");
    assert!(out.contains("cat=2"), "{out}");
    assert!(out.contains("InvalidJobError"), "{out}");
    assert!(out.contains("mem=1"), "{out}");
    assert!(out.contains("InvalidPhaseScript"), "{out}");
    assert!(out.contains("script=1"), "{out}");
    assert!(
        out.contains("cap=17 mjob: InvalidJobError: one task may start at most 16 jobs"),
        "{out}"
    );
    let output = out
        .lines()
        .find_map(|l| l.strip_prefix("out="))
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    assert!(
        output.starts_with(&format!("/bob/jobs/{child}/stor/")),
        "{out}"
    );
    // The child is bob's, seen through the API by bob and not by alice.
    let st: serde_json::Value =
        serde_json::from_str(&ok(&bob.manta(&c, "mjob", &["get", &child], b""))).unwrap();
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["stats"]["errors"], 0, "{st}");
    assert_eq!(ok(&bob.manta(&c, "mget", &[&output], b"")).trim(), "3");
    assert!(!c.manta("mjob", &["get", &child]).status.success());
}

/// A job whose task starts a job whose task starts a job ...: the fourth
/// generation is refused (depth 0 is the API's job; tasks may start jobs
/// up to depth 3), so a job that starts itself cannot run away.
#[test]
fn jobs_started_from_tasks_nest_at_most_three_deep() {
    let c = Cluster::start().unwrap();
    let deepest = "true | mjob create -r wc 2>&1; echo rc=$?";
    let mut exec = deepest.to_owned();
    for _ in 0..3 {
        exec = format!("true | mjob create -q -o -r {}", q(&exec));
    }
    // `exec` is now what the API's job (depth 0) runs: it starts depth 1,
    // which starts 2, which starts 3, whose task is refused.
    let out = ok(&c.manta_stdin("mjob", &["create", "-o", "-r", &exec], b""));
    assert!(
        out.contains("a job started from a task may nest at most 3 deep"),
        "{out}"
    );
    assert!(out.contains("rc=1"), "{out}");
}

/// The outputs of a `msplit` map phase into two reducers that `cat` (or
/// `zcat`) what they get: the reducers' contents as a set.
fn partitions(c: &Cluster, map: &str, reduce: &str) -> BTreeSet<String> {
    let id = ok(&c.manta_stdin(
        "mjob",
        &["create", "-m", map, "--count", "2", "-r", reduce],
        b"/alice/stor/ms/in\n",
    ))
    .trim()
    .to_owned();
    ok(&c.manta("mjob", &["watch", &id]));
    let st: serde_json::Value = serde_json::from_str(&ok(&c.manta("mjob", &["get", &id]))).unwrap();
    assert_eq!(st["stats"]["errors"], 0, "{map}: {st}");
    ok(&c.manta("mjob", &["outputs", &id]))
        .lines()
        .map(|o| ok(&c.manta("mget", &[o])))
        .collect()
}

#[test]
fn msplit_json_exec_and_gzip_partition_as_manta() {
    let c = Cluster::start().unwrap();
    ok(&c.manta("mmkdir", &["-p", "~~/stor/ms"]));
    c.mput(
        "/alice/stor/ms/in",
        b"{\"x\":1,\"k\":\"a,1\"}\n{\"x\":2,\"k\":\"b,2\"}\n{\"x\":3,\"k\":\"a,3\"}\n{\"x\":4,\"k\":\"b,4\"}\n",
    );
    let l = |i: usize| {
        let k = ["a,1", "b,2", "a,3", "b,4"][i - 1];
        format!("{{\"x\":{i},\"k\":\"{k}\"}}\n")
    };
    let set = |a: &[usize], b: &[usize]| -> BTreeSet<String> {
        [a, b]
            .iter()
            .map(|g| g.iter().map(|i| l(*i)).collect::<String>())
            .collect()
    };
    // Manta's msplit test suite: -j -f x puts 1,3 and 2,4 together (the
    // MD5 of "1".."4" mod 2).
    assert_eq!(
        partitions(&c, "msplit -j -f x -n 2", "cat"),
        set(&[1, 3], &[2, 4])
    );
    // -e over -j's object, with a ternary as in Manta's tests.
    assert_eq!(
        partitions(&c, "msplit -j -e 'this.x < 3 ? \"1\" : \"2\"' -n 2", "cat"),
        set(&[1, 2], &[3, 4])
    );
    // -e over the line, and -i with a number key.
    assert_eq!(
        partitions(
            &c,
            r#"msplit -e 'line.split("\"")[5].substring(0, 1)' -n 2"#,
            "cat"
        ),
        set(&[1, 3], &[2, 4])
    );
    assert_eq!(
        partitions(&c, "msplit -i -j -e 'this.x % 2' -n 2", "cat"),
        set(&[2, 4], &[1, 3])
    );
    // -z: each partition a gzip stream the reducer decompresses.
    assert_eq!(
        partitions(&c, "msplit -z -j -f x -n 2", "zcat"),
        set(&[1, 3], &[2, 4])
    );
    // JavaScript outside the subset is refused by name, failing the task.
    let id = ok(&c.manta_stdin(
        "mjob",
        &[
            "create",
            "-m",
            "msplit -n 2 -e 'Math.floor(line)'",
            "--count",
            "2",
            "-r",
            "cat",
        ],
        b"/alice/stor/ms/in\n",
    ))
    .trim()
    .to_owned();
    ok(&c.manta("mjob", &["watch", &id]));
    let errors = ok(&c.manta("mjob", &["errors", &id]));
    let stderr = errors
        .lines()
        .find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            Some(v["stderr"].as_str()?.to_owned())
        })
        .unwrap_or_else(|| panic!("{errors}"));
    let text = ok(&c.manta("mget", &[&stderr]));
    assert!(text.contains("subset of JavaScript"), "{text}");
}
