//! The public edge against a real cluster. Issue 12, items 6 and 7:
//! signatures that bind the request target cannot be replayed as another
//! request, and multipart-upload headers meet the same validation and caps
//! as a PUT's. Issue 14: edge behaviours where Manta's own server (muskie)
//! answered differently from a naive implementation.

mod common;

use anyhow::Result;
use common::{Cluster, md5_b64};
use reqwest::Method;

async fn error_code(r: reqwest::Response) -> Result<(u16, String)> {
    let status = r.status().as_u16();
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await?)?;
    Ok((status, v["code"].as_str().unwrap_or("").to_owned()))
}

/// Sends `req` and asserts Manta's error answer `(status, code)`; `ctx`
/// names the case in the failure message.
async fn expect_error(req: reqwest::RequestBuilder, want: (u16, &str), ctx: &str) -> Result<()> {
    let got = error_code(req.send().await?).await?;
    assert_eq!((got.0, got.1.as_str()), want, "{ctx}");
    Ok(())
}

/// Item 6: a GET signed over `(request-target) host date`, captured and
/// replayed within the skew window with another method or on another path,
/// is refused with Manta's error and changes nothing.
#[tokio::test]
async fn request_target_signature_cannot_be_replayed() -> Result<()> {
    let c = Cluster::start().await?;
    c.mkdir("/alice/stor/d").await?;
    assert_eq!(
        c.put("/alice/stor/d/secret", b"keep me").await?.status(),
        204
    );
    assert_eq!(c.put("/alice/stor/d/other", b"other").await?.status(), 204);

    let date = Cluster::date_now();
    let host = c.addr.to_string();
    let target = "/alice/stor/d/secret";
    let signing = format!("(request-target): get {target}\nhost: {host}\ndate: {date}");
    let auth = c
        .alice
        .authorization_for(&["(request-target)", "host", "date"], &signing)?;
    let send = |method: Method, path: &str| {
        c.http
            .request(method, format!("{}{path}", c.base))
            .header("date", &date)
            .header("authorization", &auth)
            .send()
    };
    let r = send(Method::GET, target).await?;
    assert_eq!(r.status(), 200);
    assert_eq!(&r.bytes().await?[..], b"keep me");

    for (method, path) in [
        (Method::DELETE, target),
        (Method::PUT, target),
        (Method::GET, "/alice/stor/d/other"),
        (Method::GET, "/alice/stor/d/secret?metadata=true"),
    ] {
        let r = send(method.clone(), path).await?;
        assert_eq!(
            error_code(r).await?,
            (403, "InvalidSignature".to_owned()),
            "{method} {path}"
        );
    }
    // Another Host (a capture replayed against another gateway name).
    expect_error(
        c.http
            .get(format!("{}{target}", c.base))
            .header("host", "elsewhere.example")
            .header("date", &date)
            .header("authorization", &auth),
        (403, "InvalidSignature"),
        "",
    )
    .await?;
    // Nothing was deleted or overwritten.
    assert_eq!(
        c.get_bytes(target).await?,
        (reqwest::StatusCode::OK, b"keep me".to_vec())
    );

    // The helper form, `(request-target) date`, and the CLI's date-only
    // form both still work.
    let with_target = c.alice.authorization_with_target("GET", target, &date)?;
    let r = c
        .http
        .get(format!("{}{target}", c.base))
        .header("date", &date)
        .header("authorization", &with_target)
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    expect_error(
        c.http
            .delete(format!("{}{target}", c.base))
            .header("date", &date)
            .header("authorization", &with_target),
        (403, "InvalidSignature"),
        "",
    )
    .await?;
    assert_eq!(c.alice(Method::GET, target).send().await?.status(), 200);
    Ok(())
}

async fn mpu_create(c: &Cluster, body: serde_json::Value) -> Result<reqwest::Response> {
    let body = body.to_string();
    Ok(c.alice(Method::POST, "/alice/uploads")
        .header("content-type", "application/json")
        .header("content-md5", md5_b64(body.as_bytes()))
        .body(body)
        .send()
        .await?)
}

/// Item 7: MPU create goes through PUT's header validation. Oversized
/// `m-*` headers are refused with the code a PUT gets; invalid header names,
/// values and content-disposition are refused; a valid upload commits and
/// its object reads back with the (capped, validated) headers.
#[tokio::test]
async fn mpu_create_headers_are_validated_like_put() -> Result<()> {
    let c = Cluster::start().await?;
    c.mkdir("/alice/stor/m").await?;

    // PUT with 80 KB of m-* headers (under the HTTP layer's own limit).
    let big = "x".repeat(40_000);
    let r = c
        .alice(Method::PUT, "/alice/stor/m/put-big")
        .header("m-a", &big)
        .header("m-b", &big)
        .body(&b"data"[..])
        .send()
        .await?;
    let put_error = error_code(r).await?;
    assert_eq!(put_error, (400, "BadRequest".to_owned()));
    assert_eq!(
        c.get_bytes("/alice/stor/m/put-big").await?.0,
        reqwest::StatusCode::NOT_FOUND
    );

    // MPU create with 800 KB of m-* headers: the same answer, no upload.
    let mut headers = serde_json::Map::new();
    for i in 0..20 {
        headers.insert(format!("m-h{i}"), "y".repeat(40_000).into());
    }
    let r = mpu_create(
        &c,
        serde_json::json!({"objectPath": "/alice/stor/m/mpu-big", "headers": headers}),
    )
    .await?;
    assert_eq!(error_code(r).await?, put_error);
    let (status, body) = c.get_bytes("/alice/uploads").await?;
    assert_eq!(status, 200);
    assert!(Cluster::names(&body).is_empty(), "no upload was created");

    // What a PUT could never carry: a bad name, a value with CR/LF, a
    // content-disposition PUT refuses.
    for (name, value, code) in [
        ("m-bad name", "v", "MultipartUploadInvalidArgument"),
        (
            "m-x",
            "a\r\nx-injected: 1",
            "MultipartUploadInvalidArgument",
        ),
        ("content-disposition", "attach ment", "BadRequest"),
        ("m-obj", "{}", ""),
    ] {
        let value: serde_json::Value = if name == "m-obj" {
            serde_json::json!({"nested": true})
        } else {
            value.into()
        };
        let r = mpu_create(
            &c,
            serde_json::json!({"objectPath": "/alice/stor/m/bad", "headers": {name: value}}),
        )
        .await?;
        let (status, got) = error_code(r).await?;
        assert!((400..500).contains(&status), "{name}: {status} {got}");
        if !code.is_empty() {
            assert_eq!(got, code, "{name}");
        }
    }

    // A valid one commits; its headers read back; an over-4-KiB tail is
    // trimmed exactly as a PUT trims it.
    let r = mpu_create(
        &c,
        serde_json::json!({
            "objectPath": "/alice/stor/m/ok",
            "headers": {
                "m-color": "blue",
                "M-Size": 7,
                "m-zbig1": "z".repeat(3000),
                "m-zbig2": "z".repeat(3000),
                "content-type": "text/plain",
                "role-tag": "r1,r2",
                "x-not-stored": "dropped",
            }
        }),
    )
    .await?;
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await?)?;
    let dir = v["partsDirectory"].as_str().unwrap().to_owned();
    let r = c
        .alice(Method::PUT, &format!("{dir}/0"))
        .body(&b"mpu body"[..])
        .send()
        .await?;
    assert_eq!(r.status(), 204);
    let etag = r.headers()["etag"].to_str()?.to_owned();
    let r = c
        .alice(Method::POST, &format!("{dir}/commit"))
        .header("content-type", "application/json")
        .body(serde_json::json!({ "parts": [etag] }).to_string())
        .send()
        .await?;
    assert_eq!(r.status(), 201);
    let r = c.alice(Method::GET, "/alice/stor/m/ok").send().await?;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(&r.bytes().await?[..], b"mpu body");
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(get("m-color").as_deref(), Some("blue"));
    assert_eq!(get("m-size").as_deref(), Some("7"));
    assert_eq!(get("content-type").as_deref(), Some("text/plain"));
    assert_eq!(get("role-tag").as_deref(), Some("r1, r2"));
    assert_eq!(get("x-not-stored"), None);
    let kept = ["m-zbig1", "m-zbig2"]
        .iter()
        .filter(|n| get(n).is_some())
        .count();
    assert_eq!(kept, 1, "m-* beyond 4 KiB are dropped, as for a PUT");

    // The same headers on a plain PUT keep the same set.
    let r = c
        .alice(Method::PUT, "/alice/stor/m/put-ok")
        .header("m-zbig1", "z".repeat(3000))
        .header("m-zbig2", "z".repeat(3000))
        .body(&b"x"[..])
        .send()
        .await?;
    assert_eq!(r.status(), 204);
    Ok(())
}

fn header_of(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Issue 14, Content-Disposition: parsed whole on PUT, metadata update
/// and multipart create (`attachment;` is 400 BadRequest and stores
/// nothing); a path in `filename` is stripped; on directories the header
/// is ignored entirely, valid or not.
#[tokio::test]
async fn content_disposition_is_parsed_normalized_and_ignored_on_directories() -> Result<()> {
    let c = Cluster::start().await?;
    let r = c
        .alice(Method::PUT, "/alice/stor/f")
        .header(
            "content-disposition",
            "attachment; filename=\"/root/my-file.txt\"",
        )
        .body(&b"data"[..])
        .send()
        .await?;
    assert_eq!(r.status(), 204);
    let r = c.alice(Method::HEAD, "/alice/stor/f").send().await?;
    assert_eq!(
        header_of(&r, "content-disposition").as_deref(),
        Some("attachment; filename=\"my-file.txt\"")
    );
    // The listing shows the stored form too.
    let (_, body) = c.get_bytes("/alice/stor").await?;
    let line: serde_json::Value =
        serde_json::from_slice(body.split(|b| *b == b'\n').next().unwrap())?;
    assert_eq!(
        line["contentDisposition"],
        "attachment; filename=\"my-file.txt\""
    );

    for bad in [
        "attachment;",
        "attachment; filename",
        "attachment; filename=a; filename=b",
    ] {
        expect_error(
            c.alice(Method::PUT, "/alice/stor/g")
                .header("content-disposition", bad)
                .body(&b"data"[..]),
            (400, "BadRequest"),
            bad,
        )
        .await?;
        expect_error(
            c.alice(Method::PUT, "/alice/stor/f?metadata=true")
                .header("content-disposition", bad),
            (400, "BadRequest"),
            bad,
        )
        .await?;
        let r = mpu_create(
            &c,
            serde_json::json!({"objectPath": "/alice/stor/u", "headers": {"content-disposition": bad}}),
        )
        .await?;
        assert_eq!(
            error_code(r).await?,
            (400, "BadRequest".to_owned()),
            "{bad}"
        );
    }
    assert_eq!(c.get_bytes("/alice/stor/g").await?.0, 404);
    // A refused update changed nothing.
    let r = c.alice(Method::HEAD, "/alice/stor/f").send().await?;
    assert_eq!(
        header_of(&r, "content-disposition").as_deref(),
        Some("attachment; filename=\"my-file.txt\"")
    );
    // A valid update is normalized like a PUT.
    let r = c
        .alice(Method::PUT, "/alice/stor/f?metadata=true")
        .header("content-disposition", "inline; filename=\"a/b/c.txt\"")
        .send()
        .await?;
    assert_eq!(r.status(), 204);
    let r = c.alice(Method::HEAD, "/alice/stor/f").send().await?;
    assert_eq!(
        header_of(&r, "content-disposition").as_deref(),
        Some("inline; filename=\"c.txt\"")
    );

    // Directories: never stored, never an error.
    for (i, cd) in ["attachment;", "attachment; filename=x"].iter().enumerate() {
        let dir = format!("/alice/stor/d{i}");
        let r = c
            .alice(Method::PUT, &dir)
            .header("content-type", "application/json; type=directory")
            .header("content-disposition", *cd)
            .send()
            .await?;
        assert_eq!(r.status(), 204, "{cd}");
        let r = c
            .alice(Method::PUT, &format!("{dir}?metadata=true"))
            .header("content-disposition", *cd)
            .header("m-k", "v")
            .send()
            .await?;
        assert_eq!(r.status(), 204, "{cd}");
        let r = c.alice(Method::HEAD, &dir).send().await?;
        assert_eq!(header_of(&r, "content-disposition"), None);
        assert_eq!(header_of(&r, "m-k").as_deref(), Some("v"));
    }
    // An update of a missing path is still 404, whatever the header.
    expect_error(
        c.alice(Method::PUT, "/alice/stor/missing?metadata=true")
            .header("content-disposition", "attachment;"),
        (404, "ResourceNotFound"),
        "",
    )
    .await?;
    Ok(())
}

/// Issue 14, Content-Type: a value that is not `type/subtype` is looked up
/// as a file extension (`jpg` is `image/jpeg`), or else stored as
/// `application/octet-stream` (`argle/`, `/*`); on PUT, metadata update
/// and multipart upload alike.
#[tokio::test]
async fn content_type_without_a_subtype_is_looked_up() -> Result<()> {
    let c = Cluster::start().await?;
    for (sent, stored) in [
        ("jpg", "image/jpeg"),
        ("argle/", "application/octet-stream"),
        ("/*", "application/octet-stream"),
        ("text/plain; charset=utf-8", "text/plain; charset=utf-8"),
    ] {
        let r = c
            .alice(Method::PUT, "/alice/stor/o")
            .header("content-type", sent)
            .body(&b"data"[..])
            .send()
            .await?;
        assert_eq!(r.status(), 204, "{sent}");
        let r = c.alice(Method::GET, "/alice/stor/o").send().await?;
        assert_eq!(
            header_of(&r, "content-type").as_deref(),
            Some(stored),
            "{sent}"
        );
    }
    let r = c
        .alice(Method::PUT, "/alice/stor/o?metadata=true")
        .header("content-type", "png")
        .send()
        .await?;
    assert_eq!(r.status(), 204);
    let r = c.alice(Method::HEAD, "/alice/stor/o").send().await?;
    assert_eq!(header_of(&r, "content-type").as_deref(), Some("image/png"));

    let r = mpu_create(
        &c,
        serde_json::json!({"objectPath": "/alice/stor/m", "headers": {"content-type": "pdf"}}),
    )
    .await?;
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await?)?;
    let dir = v["partsDirectory"].as_str().unwrap_or_default().to_owned();
    let r = c
        .alice(Method::PUT, &format!("{dir}/0"))
        .body(&b"part"[..])
        .send()
        .await?;
    let etag = header_of(&r, "etag").unwrap_or_default();
    let r = c
        .alice(Method::POST, &format!("{dir}/commit"))
        .header("content-type", "application/json")
        .body(serde_json::json!({ "parts": [etag] }).to_string())
        .send()
        .await?;
    assert_eq!(r.status(), 201);
    let r = c.alice(Method::HEAD, "/alice/stor/m").send().await?;
    assert_eq!(
        header_of(&r, "content-type").as_deref(),
        Some("application/pdf")
    );
    Ok(())
}

/// Issue 14, CORS on ordinary requests: with `Origin`, a method missing
/// from the stored `access-control-allow-methods` gets no CORS header at
/// all; `-max-age` and `-allow-headers` go only to the preflight.
#[tokio::test]
async fn cors_headers_follow_the_stored_methods() -> Result<()> {
    let c = Cluster::start().await?;
    let r = c
        .alice(Method::PUT, "/alice/stor/c")
        .header("access-control-allow-origin", "https://a.example")
        .header("access-control-allow-methods", "GET, OPTIONS")
        .header("access-control-allow-headers", "x-foo")
        .header("access-control-expose-headers", "m-a")
        .header("access-control-max-age", "60")
        .body(&b"data"[..])
        .send()
        .await?;
    assert_eq!(r.status(), 204);
    let cors = |r: &reqwest::Response| {
        let mut v: Vec<(String, String)> = r
            .headers()
            .iter()
            .filter(|(k, _)| k.as_str().starts_with("access-control-"))
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        v.sort();
        v
    };
    let r = c
        .alice(Method::GET, "/alice/stor/c")
        .header("origin", "https://a.example")
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(
        cors(&r),
        vec![
            pair("access-control-allow-methods", "GET, OPTIONS"),
            pair("access-control-allow-origin", "https://a.example"),
            pair("access-control-expose-headers", "m-a"),
        ]
    );
    // HEAD is not among the methods: nothing.
    let r = c
        .alice(Method::HEAD, "/alice/stor/c")
        .header("origin", "https://a.example")
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    assert_eq!(cors(&r), vec![]);
    // Another origin: nothing either.
    let r = c
        .alice(Method::GET, "/alice/stor/c")
        .header("origin", "https://b.example")
        .send()
        .await?;
    assert_eq!(cors(&r), vec![]);
    // The preflight carries max-age and allow-headers.
    let r = c
        .alice(Method::OPTIONS, "/alice/stor/c")
        .header("origin", "https://a.example")
        .header("access-control-request-method", "GET")
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    assert_eq!(
        cors(&r),
        vec![
            pair("access-control-allow-headers", "x-foo"),
            pair("access-control-allow-methods", "GET, OPTIONS"),
            pair("access-control-allow-origin", "https://a.example"),
            pair("access-control-max-age", "60"),
        ]
    );
    // Preflights that the stored rules do not allow: 200, no CORS headers.
    for (origin, method, headers) in [
        (Some("https://a.example"), Some("DELETE"), None),
        (Some("https://b.example"), Some("GET"), None),
        (Some("https://a.example"), Some("GET"), Some("x-bar")),
        (None, Some("GET"), None),
        (Some("https://a.example"), None, None),
    ] {
        let mut req = c.alice(Method::OPTIONS, "/alice/stor/c");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(m) = method {
            req = req.header("access-control-request-method", m);
        }
        if let Some(h) = headers {
            req = req.header("access-control-request-headers", h);
        }
        let r = req.send().await?;
        assert_eq!(r.status(), 200);
        assert_eq!(cors(&r), vec![], "{origin:?} {method:?} {headers:?}");
    }
    // A PUT preflight is answered from the parent directory's rules (the
    // object need not exist yet).
    let r = c
        .alice(Method::PUT, "/alice/stor/up")
        .header("content-type", "application/json; type=directory")
        .header("access-control-allow-origin", "*")
        .header("access-control-allow-methods", "PUT")
        .send()
        .await?;
    assert_eq!(r.status(), 204);
    let r = c
        .alice(Method::OPTIONS, "/alice/stor/up/new-file")
        .header("origin", "https://a.example")
        .header("access-control-request-method", "PUT")
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    assert_eq!(
        cors(&r),
        vec![
            pair("access-control-allow-methods", "PUT"),
            pair("access-control-allow-origin", "https://a.example"),
        ]
    );
    Ok(())
}

/// Issue 14, ranges and negotiation. A malformed `Range` is 416 with
/// `Content-Range: bytes */SIZE`, but only once the caller may see the
/// object: anonymous or other-account requests, and missing paths, get
/// exactly what they get without `Range`. `Accept` that the object's type
/// cannot satisfy is 406; a declared length no node has room for is 507
/// before the body is read; a body on a metadata update is 400
/// InvalidUpdate.
#[tokio::test]
async fn ranges_negotiation_space_and_update_lengths() -> Result<()> {
    let c = Cluster::start().await?;
    let r = c
        .alice(Method::PUT, "/alice/stor/r")
        .header("content-type", "text/plain")
        .body(&b"hello world!"[..])
        .send()
        .await?;
    assert_eq!(r.status(), 204);
    let r = c
        .alice(Method::PUT, "/alice/public/p")
        .header("content-type", "text/plain")
        .body(&b"public bytes"[..])
        .send()
        .await?;
    assert_eq!(r.status(), 204);

    for range in ["bytes=x-y", "bytes=5-2", "items=0-1", "bytes=0-1,3-4"] {
        // Strangers and missing paths: as without Range.
        let anon = c
            .req(None, Method::GET, "/alice/stor/r")
            .header("range", range);
        assert_eq!(error_code(anon.send().await?).await?.0, 403, "{range}");
        let bob = c
            .req(Some(&c.bob), Method::GET, "/alice/stor/r")
            .header("range", range);
        assert_eq!(error_code(bob.send().await?).await?.0, 403, "{range}");
        let anon = c
            .req(None, Method::GET, "/alice/public/missing")
            .header("range", range);
        assert_eq!(
            error_code(anon.send().await?).await?,
            (404, "ResourceNotFound".to_owned()),
            "{range}"
        );
        let own = c
            .alice(Method::GET, "/alice/stor/missing")
            .header("range", range);
        assert_eq!(error_code(own.send().await?).await?.0, 404, "{range}");
        // The owner, and anyone on /public, learn the size.
        for (req, size) in [
            (c.alice(Method::GET, "/alice/stor/r"), 12),
            (c.req(None, Method::GET, "/alice/public/p"), 12),
        ] {
            let r = req.header("range", range).send().await?;
            if range.contains(',') {
                assert_eq!(error_code(r).await?, (501, "NotImplemented".to_owned()));
                continue;
            }
            assert_eq!(
                header_of(&r, "content-range").as_deref(),
                Some(format!("bytes */{size}").as_str()),
                "{range}"
            );
            assert_eq!(
                error_code(r).await?,
                (416, "RangeNotSatisfiable".to_owned())
            );
        }
    }
    // A good range still works.
    let r = c
        .alice(Method::GET, "/alice/stor/r")
        .header("range", "bytes=6-")
        .send()
        .await?;
    assert_eq!(r.status(), 206);
    assert_eq!(&r.bytes().await?[..], b"world!");

    // Negotiation: objects only, after authorization.
    for accept in ["application/json", "image/*", "text/plain;q=0"] {
        expect_error(
            c.alice(Method::GET, "/alice/stor/r")
                .header("accept", accept),
            (406, "NotAcceptable"),
            accept,
        )
        .await?;
        let r = c
            .alice(Method::HEAD, "/alice/stor/r")
            .header("accept", accept)
            .send()
            .await?;
        assert_eq!(r.status(), 406, "{accept}");
        let r = c
            .req(None, Method::GET, "/alice/stor/r")
            .header("accept", accept)
            .send()
            .await?;
        assert_eq!(r.status(), 403, "{accept}");
    }
    for accept in ["text/*", "*/*", "application/json, text/plain;q=0.1"] {
        let r = c
            .alice(Method::GET, "/alice/stor/r")
            .header("accept", accept)
            .send()
            .await?;
        assert_eq!(r.status(), 200, "{accept}");
    }
    let r = c
        .alice(Method::GET, "/alice/stor")
        .header("accept", "image/png")
        .send()
        .await?;
    assert_eq!(r.status(), 200, "directories are not negotiated");

    // A body on a metadata update.
    expect_error(
        c.alice(Method::PUT, "/alice/stor/r?metadata=true")
            .header("m-a", "b")
            .body(&b"hello"[..]),
        (400, "InvalidUpdate"),
        "",
    )
    .await?;
    let r = c.alice(Method::HEAD, "/alice/stor/r").send().await?;
    assert_eq!(header_of(&r, "m-a"), None);

    // No node has room for the declared length: 507 before the body.
    for mut n in c.ns.list_nodes().await? {
        n.capacity_total = 1 << 20;
        n.capacity_used = 0;
        c.ns.register_node(&n).await?;
    }
    let head = c.signed_head(
        "PUT",
        "/alice/stor/big",
        "Content-Length: 2097152\r\nExpect: 100-continue\r\n",
    );
    let answer = c.raw_exchange(&head).await?;
    assert!(answer.starts_with("HTTP/1.1 507"), "{answer}");
    assert!(answer.contains("NotEnoughSpace"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
    assert_eq!(c.get_bytes("/alice/stor/big").await?.0, 404);
    // What fits still goes in.
    assert_eq!(c.put("/alice/stor/small", b"fits").await?.status(), 204);
    Ok(())
}

/// Issue 14, key errors: a keyId whose last part is not a fingerprint of
/// any key is `403 KeyDoesNotExist` (after the account checks), as muskie
/// answered, not `InvalidKeyId`.
#[tokio::test]
async fn unknown_key_ids_are_key_does_not_exist() -> Result<()> {
    let c = Cluster::start().await?;
    let date = Cluster::date_now();
    let auth = c.alice.authorization(&date)?;
    let start = auth.find("/alice/keys/").expect("keyId") + "/alice/keys/".len();
    let end = start + auth[start..].find('"').expect("end of keyId");
    for (key_id, expected) in [
        ("/alice/keys/not-a-fingerprint", "KeyDoesNotExist"),
        ("/nobody/keys/not-a-fingerprint", "AccountDoesNotExist"),
        ("/alice/bob/carol/keys/x", "InvalidKeyId"),
    ] {
        let forged = format!(
            "{}{key_id}{}",
            &auth[..start - "/alice/keys/".len()],
            &auth[end..]
        );
        let r = c
            .http
            .get(format!("{}/alice/stor", c.base))
            .header("date", &date)
            .header("authorization", forged)
            .send()
            .await?;
        assert_eq!(error_code(r).await?, (403, expected.to_owned()), "{key_id}");
    }
    // The same for a presigned URL's keyId.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let host = c.addr.to_string();
    let pq = c.alice.presign(&auth::sign::Presign {
        methods: &["GET"],
        host: &host,
        raw_path: "/alice/stor",
        expires: now + 600,
        role: None,
    })?;
    let (path, query) = pq.split_once('?').expect("query");
    let query: Vec<String> = query
        .split('&')
        .map(|kv| {
            if kv.starts_with("keyId=") {
                "keyId=%2Falice%2Fkeys%2Fnope".to_owned()
            } else {
                kv.to_owned()
            }
        })
        .collect();
    expect_error(
        c.http.get(format!("{}{path}?{}", c.base, query.join("&"))),
        (403, "KeyDoesNotExist"),
        "",
    )
    .await?;
    Ok(())
}

/// Issue 14, tokens: `POST /:login/tokens` answers `201 {"token": ...}`
/// to the account itself only; `Authorization: Token` then acts as that
/// account and nobody else; a token that is not one the gateway made, was
/// altered, or whose key was removed is `403 InvalidAuthenticationToken`;
/// a token cannot mint another.
#[tokio::test]
async fn auth_tokens() -> Result<()> {
    let c = Cluster::start().await?;
    let r = c.alice(Method::POST, "/alice/tokens").send().await?;
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await?)?;
    let token = v["token"].as_str().expect("token").to_owned();

    expect_error(
        c.alice(Method::POST, "/bob/tokens"),
        (403, "AuthorizationFailed"),
        "",
    )
    .await?;
    let r = c.req(None, Method::POST, "/alice/tokens").send().await?;
    assert_eq!(error_code(r).await?.0, 403);

    let with = |t: &str, method: Method, path: &str| {
        c.http
            .request(method, format!("{}{path}", c.base))
            .header("date", Cluster::date_now())
            .header("authorization", format!("Token {t}"))
    };
    let r = with(&token, Method::PUT, "/alice/stor/t")
        .body(&b"by token"[..])
        .send()
        .await?;
    assert_eq!(r.status(), 204);
    assert_eq!(c.get_bytes("/alice/stor/t").await?.1, b"by token");
    let r = with(&token, Method::GET, "/alice/stor/t").send().await?;
    assert_eq!(&r.bytes().await?[..], b"by token");
    let r = with(&token, Method::GET, "/bob/stor").send().await?;
    assert_eq!(
        error_code(r).await?,
        (403, "AuthorizationFailed".to_owned())
    );
    let r = with(&token, Method::POST, "/alice/tokens").send().await?;
    assert_eq!(error_code(r).await?.0, 403);

    let mut altered = token.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered)?;
    for bad in ["nonsense", "a.b", altered.as_str()] {
        let r = with(bad, Method::GET, "/alice/stor").send().await?;
        assert_eq!(
            error_code(r).await?,
            (403, "InvalidAuthenticationToken".to_owned()),
            "{bad}"
        );
    }
    // Removing the key that minted it revokes the token.
    let key = c.ns.list_keys("alice", None).await?.remove(0);
    c.ns.remove_key("alice", None, &key.fingerprint_md5).await?;
    let r = with(&token, Method::GET, "/alice/stor").send().await?;
    assert_eq!(
        error_code(r).await?,
        (403, "InvalidAuthenticationToken".to_owned())
    );
    Ok(())
}

/// Creates an upload for `target` with one part and returns (parts
/// directory, etag of the part).
async fn upload_one_part(c: &Cluster, target: &str) -> Result<(String, String)> {
    let r = mpu_create(c, serde_json::json!({ "objectPath": target })).await?;
    assert_eq!(r.status(), 201, "create for {target}");
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await?)?;
    let dir = v["partsDirectory"].as_str().unwrap_or_default().to_owned();
    let r = c
        .alice(Method::PUT, &format!("{dir}/0"))
        .body(&b"part"[..])
        .send()
        .await?;
    assert_eq!(r.status(), 204);
    Ok((dir, header_of(&r, "etag").unwrap_or_default()))
}

async fn commit(c: &Cluster, dir: &str, body: &str) -> Result<reqwest::Response> {
    Ok(c.alice(Method::POST, &format!("{dir}/commit"))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await?)
}

/// Issue 14, multipart uploads as muskie answered them: the target is
/// checked at commit, not create (root directory, missing parent, another
/// account); an upload for an unknown account is AccountDoesNotExist; a
/// commit without `parts` is 409; DELETE of `/:login/uploads/:id`
/// redirects; GET/HEAD of `abort`/`commit` and GET of a part are 405;
/// non-upload names under a prefix directory, and ids under a prefix that
/// is not theirs (1-4 hex digits), are 404.
#[tokio::test]
async fn multipart_edges() -> Result<()> {
    let c = Cluster::start().await?;
    for (target, expected) in [
        ("/alice/stor", (400, "OperationNotAllowedOnDirectory")),
        ("/alice", (400, "OperationNotAllowedOnDirectory")),
        ("/alice/stor/nodir/x", (404, "DirectoryDoesNotExist")),
        ("/bob/stor/x", (403, "AuthorizationFailed")),
    ] {
        let (dir, etag) = upload_one_part(&c, target).await?;
        let r = commit(
            &c,
            &dir,
            &serde_json::json!({ "parts": [etag] }).to_string(),
        )
        .await?;
        assert_eq!(
            error_code(r).await?,
            (expected.0, expected.1.to_owned()),
            "{target}"
        );
    }
    let (s, _) = c
        .req(Some(&c.bob), Method::GET, "/bob/stor/x")
        .send()
        .await
        .map(|r| (r.status(), ()))?;
    assert_eq!(s, 404, "nothing was written in bob's tree");

    expect_error(
        c.alice(Method::POST, "/nobody/uploads")
            .header("content-type", "application/json")
            .body(r#"{"objectPath": "/nobody/stor/x"}"#),
        (403, "AccountDoesNotExist"),
        "",
    )
    .await?;
    expect_error(
        c.alice(Method::POST, "/bob/uploads")
            .header("content-type", "application/json")
            .body(r#"{"objectPath": "/bob/stor/x"}"#),
        (403, "AuthorizationFailed"),
        "",
    )
    .await?;

    // A commit needs its parts array; nothing is committed without one.
    let (dir, etag) = upload_one_part(&c, "/alice/stor/m").await?;
    for body in ["{}", "", r#"{"parts": "x"}"#] {
        let r = commit(&c, &dir, body).await?;
        assert_eq!(
            error_code(r).await?,
            (409, "MultipartUploadInvalidArgument".to_owned()),
            "{body:?}"
        );
    }
    assert_eq!(c.get_bytes("/alice/stor/m").await?.0, 404);

    // Routing.
    let id = dir.rsplit('/').next().unwrap_or_default().to_owned();
    let prefix = &id[..1];
    let r = c
        .alice(Method::DELETE, &format!("/alice/uploads/{id}"))
        .send()
        .await?;
    assert_eq!(r.status(), 301);
    assert_eq!(header_of(&r, "location"), Some(dir.clone()));
    for (method, tail) in [
        (Method::GET, "abort"),
        (Method::HEAD, "abort"),
        (Method::GET, "commit"),
        (Method::HEAD, "commit"),
        (Method::GET, "0"),
    ] {
        let r = c
            .alice(method.clone(), &format!("{dir}/{tail}"))
            .send()
            .await?;
        assert_eq!(r.status(), 405, "{method} {tail}");
    }
    for path in [
        format!("/alice/uploads/{prefix}/not-an-id"),
        format!("/alice/uploads/{prefix}/not-an-id/state"),
    ] {
        expect_error(
            c.alice(Method::PUT, &path).body(&b"x"[..]),
            (404, "ResourceNotFound"),
            &path,
        )
        .await?;
    }
    let other = if prefix == "0" { "1" } else { "0" };
    for p in [
        id[..4].to_owned(),
        id[..2].to_owned(),
        other.to_owned(),
        id[..5].to_owned(),
    ] {
        expect_error(
            c.alice(Method::GET, &format!("/alice/uploads/{p}/{id}/state")),
            (404, "ResourceNotFound"),
            &p,
        )
        .await?;
    }
    // The upload itself still commits.
    let r = commit(
        &c,
        &dir,
        &serde_json::json!({ "parts": [etag] }).to_string(),
    )
    .await?;
    assert_eq!(r.status(), 201);
    assert_eq!(c.get_bytes("/alice/stor/m").await?.1, b"part");
    Ok(())
}
