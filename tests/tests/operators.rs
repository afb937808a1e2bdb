//! Operator accounts through Manta's own CLI against a real `tidepool up`:
//! an operator reads, lists and (as in Manta) writes in another account;
//! an ordinary account gets Manta's `AuthorizationFailed`; nothing a
//! request carries makes an account an operator, only `tidepool admin`.

use tidepool_tests::{Cluster, Tenant, failed, md5_fingerprint, ok};

/// The CLI's report of a 403 from muskie's authorizer.
fn assert_denied(out: &std::process::Output, who: &str, path: &str) {
    let err = failed(out);
    assert!(
        err.contains("AuthorizationFailed")
            && err.contains(&format!("{who} is not allowed to access {path}")),
        "{who} on {path}: {err}"
    );
}

/// `who` may neither read, list nor find anything in bob's private tree.
fn assert_shut_out(c: &Cluster, who: &Tenant) {
    let l = who.login.as_str();
    assert_denied(
        &who.manta(c, "mget", &["/bob/stor/private/secret"], b""),
        l,
        "/bob/stor/private/secret",
    );
    assert_denied(
        &who.manta(c, "mls", &["/bob/stor/private"], b""),
        l,
        "/bob/stor/private",
    );
    // mfind reports a 403 by its HTTP name only.
    let err = failed(&who.manta(c, "mfind", &["/bob/stor"], b""));
    assert!(err.contains("in /bob/stor: ForbiddenError"), "{l}: {err}");
    // mput too (the code is the same 403 AuthorizationFailed as above).
    let err = failed(&who.manta(c, "mput", &["/bob/stor/private/planted"], b"x"));
    assert!(err.contains("mput: ForbiddenError"), "{l}: {err}");
}

#[test]
fn an_operator_reads_and_lists_other_accounts_and_nobody_else_does() {
    let mut c = Cluster::start().unwrap();
    let bob = c.add_tenant("bob").unwrap();
    let eve = c.add_tenant("eve").unwrap();
    let op = c.add_tenant("op").unwrap();
    ok(&bob.manta(&c, "mmkdir", &["-p", "~~/stor/private/deeper"], b""));
    ok(&bob.manta(&c, "mput", &["~~/stor/private/secret"], b"bob's secret\n"));

    // Before the flag: op is an ordinary account, like eve.
    assert_shut_out(&c, &eve);
    assert_shut_out(&c, &op);
    // Nothing a request can carry makes op an operator: headers the CLI
    // sends (role, role-tag, made-up ones) on reads and on writes to its
    // own tree, and a subuser named like the flag.
    for h in [
        "operator: true",
        "x-operator: true",
        "role: _operator",
        "role: operators",
        "role-tag: operators",
        "m-operator: true",
    ] {
        // Writes in op's own tree with the header (their answer does not
        // matter here: role headers may be refused once roles exist).
        let _ = op.manta(&c, "mput", &["-H", h, "~~/stor/probe"], b"x");
        let _ = op.manta(&c, "mmkdir", &["-H", h, "~~/stor/probedir"], b"");
        let _ = op.manta(&c, "mchattr", &["-H", h, "~~/stor/probe"], b"");
        let out = op.manta(&c, "mget", &["-H", h, "/bob/stor/private/secret"], b"");
        failed(&out);
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("secret"),
            "{h}: {out:?}"
        );
        if !h.starts_with("role") {
            assert_denied(&out, "op", "/bob/stor/private/secret");
        }
    }
    assert_shut_out(&c, &op);
    let sub_home = c.root.path().join("op-sub-home");
    let sub_key = sub_home.join(".ssh/id_ed25519");
    std::fs::create_dir_all(sub_key.parent().unwrap()).unwrap();
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "operator", "-f"])
        .arg(&sub_key)
        .status()
        .unwrap();
    assert!(st.success());
    let sub_pub = sub_key.with_extension("pub");
    c.admin(&[
        "key",
        "add",
        "op",
        sub_pub.to_str().unwrap(),
        "--subuser",
        "operator",
    ])
    .unwrap();
    let listed = c.admin(&["account", "list"]).unwrap();
    assert!(
        listed.lines().any(|l| l == "account op"),
        "no request made op an operator: {listed}"
    );

    // The admin command is the one way in.
    let out = c.admin(&["account", "add", "op", "--operator"]).unwrap();
    assert!(out.contains("account op is an operator"), "{out}");
    let listed = c.admin(&["account", "list"]).unwrap();
    assert!(
        listed.lines().any(|l| l == "account op (operator)"),
        "{listed}"
    );
    assert!(listed.lines().any(|l| l == "account eve"), "{listed}");

    // The operator reads, lists and finds bob's private objects.
    let got = op.manta(&c, "mget", &["/bob/stor/private/secret"], b"");
    ok(&got);
    assert_eq!(got.stdout, b"bob's secret\n");
    let ls = ok(&op.manta(&c, "mls", &["/bob/stor/private"], b""));
    assert_eq!(ls.lines().collect::<Vec<_>>(), ["deeper/", "secret"]);
    let found = ok(&op.manta(&c, "mfind", &["-t", "o", "/bob/stor"], b""));
    assert_eq!(found.trim(), "/bob/stor/private/secret");
    let info = ok(&op.manta(&c, "minfo", &["/bob/stor/private/secret"], b""));
    assert!(info.contains("content-length: 13"), "{info}");
    // As Manta's authorizer allowed every action to an operator account,
    // it may also write and delete there.
    ok(&op.manta(&c, "mput", &["/bob/stor/private/from-op"], b"op was here\n"));
    let got = bob.manta(&c, "mget", &["~~/stor/private/from-op"], b"");
    ok(&got);
    assert_eq!(got.stdout, b"op was here\n");
    ok(&op.manta(&c, "mrm", &["/bob/stor/private/from-op"], b""));
    assert!(
        !bob.manta(&c, "mget", &["~~/stor/private/from-op"], b"")
            .status
            .success()
    );

    // Nobody else gained anything: eve, and op's own subuser (an
    // operator's subusers are not operators).
    assert_shut_out(&c, &eve);
    let sub = Tenant {
        login: "op".into(),
        home: sub_home,
        key_id: md5_fingerprint(&sub_pub).unwrap(),
    };
    let out = sub
        .manta_cmd(&c, "mget")
        .env("MANTA_SUBUSER", "operator")
        .arg("/bob/stor/private/secret")
        .output()
        .unwrap();
    assert_denied(&out, "op/operator", "/bob/stor/private/secret");

    // Revoked, op is shut out again.
    let out = c.admin(&["account", "operator", "op", "--revoke"]).unwrap();
    assert!(out.contains("no longer an operator"), "{out}");
    assert_shut_out(&c, &op);
    let listed = c.admin(&["account", "list"]).unwrap();
    assert!(listed.lines().any(|l| l == "account op"), "{listed}");
}

/// A job of `who` over `inputs`; its state, errors and output bytes.
fn run_job(c: &Cluster, who: &Tenant, args: &[&str], inputs: &str) -> (String, String, String) {
    let mut create = vec!["create"];
    create.extend_from_slice(args);
    let id = ok(&who.manta(c, "mjob", &create, inputs.as_bytes()))
        .trim()
        .to_owned();
    let watched = who.manta(c, "mjob", &["watch", &id], b"");
    let status: serde_json::Value = serde_json::from_slice(&watched.stdout)
        .unwrap_or_else(|e| panic!("mjob watch: {e}: {}", failed(&watched)));
    let errors = ok(&who.manta(c, "mjob", &["errors", &id], b""));
    let mut out = String::new();
    for name in ok(&who.manta(c, "mjob", &["outputs", &id], b"")).lines() {
        out.push_str(&ok(&who.manta(c, "mget", &[name], b"")));
    }
    (status["state"].to_string(), errors, out)
}

#[test]
fn an_operators_job_reads_other_accounts_and_an_ordinary_job_does_not() {
    let mut c = Cluster::start().unwrap();
    let bob = c.add_tenant("bob").unwrap();
    let eve = c.add_tenant("eve").unwrap();
    let op = c.add_tenant("op").unwrap();
    ok(&bob.manta(&c, "mput", &["~~/stor/secret"], b"bob's secret\n"));
    ok(&op.manta(&c, "mput", &["~~/stor/seed"], b"seed\n"));
    ok(&eve.manta(&c, "mput", &["~~/stor/seed"], b"seed\n"));
    c.admin(&["account", "add", "op", "--operator"]).unwrap();

    // Map input (supervisor and agent), reducer input (supervisor and the
    // agent's reducer feed), and an in-task tool (mcat emits bob's object
    // as the map's output, which the reducer then reads).
    let cases: [(&[&str], String); 3] = [
        (&["-m", "cat"], "/bob/stor/secret\n".to_owned()),
        (&["-r", "cat"], "/bob/stor/secret\n".to_owned()),
        (
            &["-m", "mcat /bob/stor/secret", "-r", "cat"],
            "/{me}/stor/seed\n".to_owned(),
        ),
    ];
    for (args, inputs) in &cases {
        let (state, errors, out) = run_job(&c, &op, args, &inputs.replace("{me}", "op"));
        assert_eq!(state, "\"done\"", "{args:?}");
        assert_eq!(errors, "", "{args:?}");
        assert_eq!(
            out, "bob's secret\n",
            "op's job {args:?} reads bob's object"
        );

        let (state, errors, out) = run_job(&c, &eve, args, &inputs.replace("{me}", "eve"));
        assert_eq!(state, "\"done\"", "{args:?}");
        assert!(
            errors.contains("AuthorizationError") && errors.contains("/bob/stor/secret"),
            "eve's job {args:?} is refused bob's object: {errors}"
        );
        assert!(!out.contains("secret"), "eve's job {args:?}: {out}");
    }
}
