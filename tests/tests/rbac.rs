//! Manta's access control (subusers, roles, policies, role tags) through
//! Manta's own CLI against a real `tidepool up`, set up with
//! `tidepool admin user|role|policy` and `key add --subuser`: a read-only
//! subuser reads but cannot write; role tags grant and deny as set; a
//! policy's `sourceip` condition applies; `MANTA_ROLE` picks the roles; and
//! every refusal carries Manta's code. The account owner is unaffected.

use std::process::{Command, Output};

use tidepool_tests::{Cluster, failed, md5_fingerprint, ok};

/// A subuser's client identity: its own HOME and key, `MANTA_SUBUSER`.
struct Subuser {
    login: String,
    name: String,
    home: std::path::PathBuf,
    key_id: String,
}

impl Subuser {
    /// Creates a key for `login/name` and registers it with `tidepool admin
    /// key add --subuser`, checking the setup it prints.
    fn add(c: &mut Cluster, login: &str, name: &str) -> Subuser {
        let home = c.root.path().join(format!("{login}-{name}-home"));
        let key = home.join(".ssh/id_ed25519");
        std::fs::create_dir_all(key.parent().unwrap()).unwrap();
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(st.success());
        let public = key.with_extension("pub");
        let out = c
            .admin(&[
                "key",
                "add",
                login,
                public.to_str().unwrap(),
                "--subuser",
                name,
            ])
            .unwrap();
        let key_id = md5_fingerprint(&public).unwrap();
        for line in [
            format!("export MANTA_USER={login}"),
            format!("export MANTA_SUBUSER={name}"),
            format!("export MANTA_KEY_ID={key_id}"),
        ] {
            assert!(out.lines().any(|l| l == line), "{line} in {out}");
        }
        Subuser {
            login: login.to_owned(),
            name: name.to_owned(),
            home,
            key_id,
        }
    }

    /// Runs a CLI tool as this subuser, with `MANTA_ROLE` when `role` is set.
    fn run(&self, c: &Cluster, role: Option<&str>, tool: &str, args: &[&str]) -> Output {
        self.run_with(c, role, tool, args, b"written by a subuser\n")
    }

    /// [`Subuser::run`] with `input` on stdin.
    fn run_with(
        &self,
        c: &Cluster,
        role: Option<&str>,
        tool: &str,
        args: &[&str],
        input: &[u8],
    ) -> Output {
        let mut cmd = c.manta_cmd(tool);
        cmd.env("HOME", &self.home)
            .env("MANTA_USER", &self.login)
            .env("MANTA_SUBUSER", &self.name)
            .env("MANTA_KEY_ID", &self.key_id)
            .env_remove("MANTA_ROLE")
            .args(args);
        if let Some(r) = role {
            cmd.env("MANTA_ROLE", r);
        }
        tidepool_tests::run_with_deadline(
            &mut cmd,
            Some(input),
            std::time::Duration::from_secs(300),
        )
    }
}

/// A refusal with Manta's code (and, for AuthorizationFailed, its message).
fn assert_code(out: &Output, code: &str, message: &str) {
    let err = failed(out);
    assert!(
        err.contains(code) && err.contains(message),
        "expected {code} / {message:?}, got: {err}"
    );
}

#[test]
fn roles_policies_and_tags_decide_what_a_subuser_may_do() {
    let mut c = Cluster::start().unwrap();
    let bob = c.add_tenant("bob").unwrap();
    let reader = Subuser::add(&mut c, "bob", "reader");
    let writer = Subuser::add(&mut c, "bob", "writer");
    for args in [
        &[
            "policy",
            "add",
            "bob",
            "read",
            "--rule",
            "CAN getobject and getdirectory",
        ][..],
        &[
            "policy",
            "add",
            "bob",
            "write",
            "--rule",
            "CAN putobject",
            "--rule",
            "CAN putdirectory",
        ],
        &[
            "policy",
            "add",
            "bob",
            "lan",
            "--rule",
            "CAN getobject WHEN sourceip = 10.0.0.0/8",
        ],
        &[
            "policy",
            "add",
            "bob",
            "local",
            "--rule",
            "CAN getobject WHEN sourceip = 127.0.0.0/8",
        ],
        &[
            "role",
            "add",
            "bob",
            "readers",
            "--default-member",
            "reader",
            "--member",
            "writer",
            "--policy",
            "read",
        ],
        &[
            "role", "add", "bob", "writers", "--member", "writer", "--policy", "write", "--policy",
            "read",
        ],
        &[
            "role",
            "add",
            "bob",
            "lan",
            "--default-member",
            "reader",
            "--policy",
            "lan",
        ],
        &[
            "role",
            "add",
            "bob",
            "local",
            "--default-member",
            "reader",
            "--policy",
            "local",
        ],
    ] {
        c.admin(args).unwrap();
    }
    // The admin commands show what they stored, and refuse a bad rule.
    let roles = c.admin(&["role", "list", "bob"]).unwrap();
    assert!(
        roles.contains("role readers members: writer, reader defaults: reader policies: read"),
        "{roles}"
    );
    let users = c.admin(&["user", "list", "bob"]).unwrap();
    assert!(
        users.contains("user bob/writer roles: readers, writers"),
        "{users}"
    );
    assert!(
        c.admin(&["policy", "add", "bob", "bad", "--rule", "getobject please"])
            .is_err()
    );

    // The owner lays out a tree: a directory and object tagged `readers`,
    // an untagged object, one tagged `lan`.
    ok(&bob.manta(&c, "mmkdir", &["~~/stor/shared"], b""));
    ok(&bob.manta(&c, "mchmod", &["--", "+readers", "~~/stor/shared"], b""));
    ok(&bob.manta(
        &c,
        "mput",
        &["-H", "role-tag: readers", "~~/stor/shared/doc"],
        b"doc\n",
    ));
    ok(&bob.manta(&c, "mput", &["~~/stor/shared/untagged"], b"untagged\n"));
    ok(&bob.manta(
        &c,
        "mput",
        &["-H", "role-tag: lan", "~~/stor/shared/net"],
        b"net\n",
    ));
    let info = ok(&bob.manta(&c, "minfo", &["~~/stor/shared/doc"], b""));
    assert!(info.contains("role-tag: readers"), "{info}");
    // A tag must name a role of the account.
    assert_code(
        &bob.manta(&c, "mchmod", &["--", "+nosuch", "~~/stor/shared/doc"], b""),
        "InvalidRoleTag",
        "",
    );

    // A read-only subuser (default roles) reads what `readers` tags...
    assert_eq!(
        ok(&reader.run(&c, None, "mget", &["/bob/stor/shared/doc"])),
        "doc\n"
    );
    let ls = ok(&reader.run(&c, None, "mls", &["/bob/stor/shared"]));
    assert_eq!(ls.lines().collect::<Vec<_>>(), ["doc", "net", "untagged"]);
    // ...but cannot write, delete or retag there.
    assert_code(
        &reader.run(&c, None, "mput", &["/bob/stor/shared/new"]),
        "AuthorizationFailed",
        "bob/reader is not allowed to access /bob/stor/shared/new",
    );
    assert_code(
        &reader.run(&c, None, "mrm", &["/bob/stor/shared/doc"]),
        "AuthorizationFailed",
        "bob/reader is not allowed to access /bob/stor/shared/doc",
    );
    assert_code(
        &reader.run(
            &c,
            None,
            "mchmod",
            &["--", "+writers", "/bob/stor/shared/doc"],
        ),
        "AuthorizationFailed",
        "bob/reader is not allowed to access /bob/stor/shared/doc",
    );
    // An object no active role tags.
    assert_code(
        &reader.run(&c, None, "mget", &["/bob/stor/shared/untagged"]),
        "NoMatchingRoleTag",
        "None of your active roles are present on the resource.",
    );
    // A role the subuser does not hold.
    assert_code(
        &reader.run(&c, Some("writers"), "mget", &["/bob/stor/shared/doc"]),
        "InvalidRole",
        "Role \"writers\" is invalid.",
    );
    // Missing entries are 404 before any role is looked at.
    assert_code(
        &reader.run(&c, None, "mget", &["/bob/stor/shared/nope"]),
        "ResourceNotFound",
        "",
    );

    // The policy condition applies: `lan` allows only from 10.0.0.0/8, and
    // the CLI connects from 127.0.0.1.
    assert_code(
        &reader.run(&c, Some("lan"), "mget", &["/bob/stor/shared/net"]),
        "AuthorizationFailed",
        "bob/reader is not allowed to access /bob/stor/shared/net",
    );
    ok(&bob.manta(&c, "mchmod", &["--", "+local", "~~/stor/shared/net"], b""));
    assert_eq!(
        ok(&reader.run(&c, Some("local"), "mget", &["/bob/stor/shared/net"])),
        "net\n"
    );
    // With only `lan` active the `local` tag does not help.
    assert_code(
        &reader.run(&c, Some("lan"), "mget", &["/bob/stor/shared/net"]),
        "AuthorizationFailed",
        "",
    );

    // `writer` has no default role: nothing is allowed until it names one.
    assert_code(
        &writer.run(&c, None, "mget", &["/bob/stor/shared/doc"]),
        "AuthorizationFailed",
        "bob/writer is not allowed to access /bob/stor/shared/doc",
    );
    assert_eq!(
        ok(&writer.run(&c, Some("readers"), "mget", &["/bob/stor/shared/doc"])),
        "doc\n"
    );
    assert_eq!(
        ok(&writer.run(&c, Some("*"), "mget", &["/bob/stor/shared/doc"])),
        "doc\n"
    );
    // Creating needs the role on the parent directory.
    assert!(
        !writer
            .run(&c, Some("writers"), "mput", &["/bob/stor/shared/new"])
            .status
            .success()
    );
    ok(&bob.manta(&c, "mchmod", &["--", "+writers", "~~/stor/shared"], b""));
    ok(&writer.run(&c, Some("writers"), "mput", &["/bob/stor/shared/new"]));
    ok(&writer.run(&c, Some("writers"), "mmkdir", &["/bob/stor/shared/sub"]));
    // A subuser's write without role-tag is tagged with its active roles.
    let info = ok(&bob.manta(&c, "minfo", &["~~/stor/shared/new"], b""));
    assert!(info.contains("role-tag: writers"), "{info}");
    assert_eq!(
        ok(&bob.manta(&c, "mget", &["~~/stor/shared/new"], b"")),
        "written by a subuser\n"
    );
    // So `readers` alone does not reach it...
    assert_code(
        &reader.run(&c, None, "mget", &["/bob/stor/shared/new"]),
        "NoMatchingRoleTag",
        "",
    );
    // ...until the owner tags it.
    ok(&bob.manta(&c, "mchmod", &["--", "+readers", "~~/stor/shared/new"], b""));
    assert_eq!(
        ok(&reader.run(&c, None, "mget", &["/bob/stor/shared/new"])),
        "written by a subuser\n"
    );
    // Untagging denies again.
    ok(&bob.manta(&c, "mchmod", &["--", "-readers", "~~/stor/shared/doc"], b""));
    assert_code(
        &reader.run(&c, None, "mget", &["/bob/stor/shared/doc"]),
        "NoMatchingRoleTag",
        "",
    );

    // The owner is never refused, tags or not.
    for p in ["doc", "untagged", "net", "new"] {
        ok(&bob.manta(&c, "mget", &[&format!("~~/stor/shared/{p}")], b""));
    }
    ok(&bob.manta(&c, "mrm", &["~~/stor/shared/untagged"], b""));

    // Removing the subuser's role takes its access away; removing the
    // subuser makes its key unknown.
    c.admin(&["role", "rm", "bob", "writers"]).unwrap();
    assert_code(
        &writer.run(&c, Some("writers"), "mget", &["/bob/stor/shared/new"]),
        "InvalidRole",
        "",
    );
    c.admin(&["user", "rm", "bob", "reader"]).unwrap();
    assert!(
        !reader
            .run(&c, None, "mget", &["/bob/stor/shared/new"])
            .status
            .success()
    );
}

#[test]
fn a_subusers_job_reads_only_what_its_roles_allow() {
    let mut c = Cluster::start().unwrap();
    let bob = c.add_tenant("bob").unwrap();
    let analyst = Subuser::add(&mut c, "bob", "analyst");
    for args in [
        &[
            "policy",
            "add",
            "bob",
            "jobs",
            "--rule",
            "CAN createjob and listjobs /bob/jobs",
            "--rule",
            "CAN getjob, managejob, putobject, putdirectory and getobject",
        ][..],
        &[
            "role",
            "add",
            "bob",
            "jobbers",
            "--default-member",
            "analyst",
            "--policy",
            "jobs",
        ],
    ] {
        c.admin(args).unwrap();
    }
    ok(&bob.manta(
        &c,
        "mput",
        &["-H", "role-tag: jobbers", "~~/stor/open"],
        b"open\n",
    ));
    ok(&bob.manta(&c, "mput", &["~~/stor/closed"], b"closed\n"));

    // With a role active that allows nothing, creating a job is refused.
    c.admin(&["role", "add", "bob", "other", "--member", "analyst"])
        .unwrap();
    assert_code(
        &analyst.run_with(&c, Some("other"), "mjob", &["create", "-m", "cat"], b""),
        // mjob prints the message only (NoMatchingRoleTag's).
        "mjob create: error",
        "None of your active roles are present on the resource.",
    );

    let id = ok(&analyst.run_with(
        &c,
        None,
        "mjob",
        &["create", "-m", "cat"],
        b"/bob/stor/open\n/bob/stor/closed\n",
    ))
    .trim()
    .to_owned();
    let watched = analyst.run(&c, None, "mjob", &["watch", &id]);
    let status: serde_json::Value = serde_json::from_slice(&watched.stdout)
        .unwrap_or_else(|e| panic!("mjob watch: {e}: {}", failed(&watched)));
    assert_eq!(status["state"], "done", "{status}");
    let errors = ok(&analyst.run(&c, None, "mjob", &["errors", &id]));
    assert!(
        errors.contains("AuthorizationError") && errors.contains("/bob/stor/closed"),
        "the untagged input is refused: {errors}"
    );
    assert!(!errors.contains("/bob/stor/open"), "{errors}");
    let outputs = ok(&analyst.run(&c, None, "mjob", &["outputs", &id]));
    let outputs: Vec<&str> = outputs.lines().collect();
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert_eq!(ok(&bob.manta(&c, "mget", &[outputs[0]], b"")), "open\n");

    // Inside the job, the in-task tools and the assets answer to the same
    // roles: the tagged object reads, the untagged one is refused.
    let id = ok(&analyst.run_with(
        &c,
        None,
        "mjob",
        &[
            "create",
            "-m",
            "mget /bob/stor/closed 2>&1 || echo refused; mget /bob/stor/open",
        ],
        b"/bob/stor/open\n",
    ))
    .trim()
    .to_owned();
    ok(&analyst.run(&c, None, "mjob", &["watch", &id]));
    let outputs = ok(&analyst.run(&c, None, "mjob", &["outputs", &id]));
    let outputs: Vec<&str> = outputs.lines().collect();
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert_eq!(
        ok(&bob.manta(&c, "mget", &[outputs[0]], b"")),
        "mget: /bob/stor/closed: permission denied (no active role of the job allows getobject)\nrefused\nopen\n"
    );
    let id = ok(&analyst.run_with(
        &c,
        None,
        "mjob",
        &[
            "create",
            "-s",
            "/bob/stor/closed",
            "-m",
            "cat /assets/bob/stor/closed",
        ],
        b"/bob/stor/open\n",
    ))
    .trim()
    .to_owned();
    ok(&analyst.run(&c, None, "mjob", &["watch", &id]));
    let errors = ok(&analyst.run(&c, None, "mjob", &["errors", &id]));
    assert!(
        errors.contains("TaskInitError") && errors.contains("status code 403"),
        "the untagged asset is refused: {errors}"
    );

    // The owner's job reads both.
    let id = ok(&bob.manta(
        &c,
        "mjob",
        &["create", "-m", "cat"],
        b"/bob/stor/open\n/bob/stor/closed\n",
    ))
    .trim()
    .to_owned();
    ok(&bob.manta(&c, "mjob", &["watch", &id], b""));
    assert_eq!(ok(&bob.manta(&c, "mjob", &["errors", &id], b"")), "");
    let id = ok(&bob.manta(
        &c,
        "mjob",
        &[
            "create",
            "-s",
            "/bob/stor/closed",
            "-m",
            "mget /bob/stor/closed; cat /assets/bob/stor/closed",
        ],
        b"/bob/stor/open\n",
    ))
    .trim()
    .to_owned();
    ok(&bob.manta(&c, "mjob", &["watch", &id], b""));
    assert_eq!(ok(&bob.manta(&c, "mjob", &["errors", &id], b"")), "");
}
