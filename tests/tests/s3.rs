//! The S3 API (`tidepool up --s3-listen`) driven by the clients people
//! hold: aws-cli and boto3 (PyPI, installed by `scripts/setup` into
//! `.tools/s3`) and rclone (Debian). Each runs a scripted session against a
//! real `tidepool up`; objects cross between the S3 API and Manta's (`mget`,
//! `mput`, `mjob`) in both directions.
//!
//! A client that is not installed makes its test skip LOUDLY (a message on
//! stderr and stdout), never pass silently: run `scripts/setup`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tidepool_tests::{Cluster, ClusterOptions, describe, host_sh, ok, payload, run_with_deadline};

fn tools() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join(".tools/s3/bin")
}

/// `None` (after saying so loudly) when `what` is not installed.
fn require(what: &str, path: &Path) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path.to_owned());
    }
    let line = format!(
        "SKIPPED: {what} is not installed at {} — run scripts/setup",
        path.display()
    );
    eprintln!("{line}");
    println!("{line}");
    None
}

fn rclone() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("rclone"))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p),
        None => require("rclone", Path::new("/usr/bin/rclone")),
    }
}

/// An account's S3 credentials as `tidepool admin s3-key add` printed them.
#[derive(Clone)]
struct Keys {
    id: String,
    secret: String,
}

/// A cluster with the S3 API on, and an access key for `alice`.
struct S3Cluster {
    c: Cluster,
    alice: Keys,
}

fn keys_from(printed: &str) -> Keys {
    let var = |name: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .unwrap_or_else(|| panic!("{name} in {printed:?}"))
            .to_owned()
    };
    Keys {
        id: var("AWS_ACCESS_KEY_ID"),
        secret: var("AWS_SECRET_ACCESS_KEY"),
    }
}

impl S3Cluster {
    fn start() -> S3Cluster {
        let mut c = Cluster::start_with(ClusterOptions {
            args: vec!["--s3-listen".into(), "127.0.0.1:0".into()],
            ..Default::default()
        })
        .expect("tidepool up");
        let alice = keys_from(&c.admin(&["s3-key", "add", "alice"]).expect("s3-key add"));
        S3Cluster { c, alice }
    }

    /// The S3 endpoint `tidepool up` printed (it moves on each restart).
    fn url(&self) -> String {
        self.c
            .printed
            .iter()
            .find_map(|l| l.strip_prefix("S3 API at "))
            .and_then(|r| r.split_whitespace().next())
            .expect("tidepool up prints the S3 API address")
            .to_owned()
    }

    fn env(&self, k: &Keys) -> Vec<(String, String)> {
        let home = self.c.root.path().join("s3-home");
        std::fs::create_dir_all(&home).expect("home");
        vec![
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
            ("HOME".into(), home.to_string_lossy().into_owned()),
            ("LC_ALL".into(), "C.UTF-8".into()),
            ("AWS_ACCESS_KEY_ID".into(), k.id.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), k.secret.clone()),
            ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("S3_URL".into(), self.url()),
        ]
    }

    fn aws(&self, aws: &Path, k: &Keys, args: &[&str]) -> Output {
        let mut cmd = Command::new(aws);
        cmd.env_clear()
            .envs(self.env(k))
            .arg("--endpoint-url")
            .arg(self.url())
            .args(args);
        run_with_deadline(&mut cmd, None, Duration::from_secs(300))
    }

    /// Runs a Python script with boto3; it prints what the test checks.
    fn python(&self, k: &Keys, script: &str) -> Output {
        let mut cmd = Command::new(tools().join("python3"));
        cmd.env_clear().envs(self.env(k)).arg("-c").arg(script);
        run_with_deadline(&mut cmd, None, Duration::from_secs(300))
    }

    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let dir = self.c.root.path().join("files");
        std::fs::create_dir_all(&dir).expect("files dir");
        let p = dir.join(name);
        std::fs::write(&p, bytes).expect("write file");
        p.to_string_lossy().into_owned()
    }
}

fn md5_hex(b: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn fails_with(o: &Output, code: &str) {
    let all = format!("{}{}", stdout(o), String::from_utf8_lossy(&o.stderr));
    assert!(
        !o.status.success() && all.contains(code),
        "expected a failure with {code}: {}",
        describe(o)
    );
}

#[test]
fn aws_cli_session_and_manta_interop() {
    let Some(aws) = require("aws-cli", &tools().join("aws")) else {
        return;
    };
    let s = S3Cluster::start();
    let a = &s.alice;
    ok(&s.aws(&aws, a, &["s3", "mb", "s3://photos"]));
    fails_with(
        &s.aws(&aws, a, &["s3", "mb", "s3://photos"]),
        "BucketAlreadyOwnedByYou",
    );
    let ls = ok(&s.aws(&aws, a, &["s3", "ls"]));
    assert!(ls.contains("photos"), "{ls}");

    // Small and multipart (aws s3 cp splits above 8 MiB) PUTs.
    let small = b"hello from aws-cli\n".repeat(3);
    let big = payload(9 << 20 | 12345, 7);
    let fs = s.file("small.txt", &small);
    let fb = s.file("big.bin", &big);
    ok(&s.aws(
        &aws,
        a,
        &["s3", "cp", &fs, "s3://photos/2024/jan/small.txt"],
    ));
    ok(&s.aws(&aws, a, &["s3", "cp", &fb, "s3://photos/big.bin"]));
    ok(&s.aws(&aws, a, &["s3", "cp", &fs, "s3://photos/2024/feb/x.txt"]));

    // The ETags are S3's: hex MD5, and md5-of-md5s-N for the multipart one.
    let head: serde_json::Value = serde_json::from_str(&ok(&s.aws(
        &aws,
        a,
        &[
            "s3api",
            "head-object",
            "--bucket",
            "photos",
            "--key",
            "2024/jan/small.txt",
        ],
    )))
    .expect("json");
    assert_eq!(head["ETag"], format!("\"{}\"", md5_hex(&small)));
    assert_eq!(head["ContentLength"], small.len());
    let head: serde_json::Value = serde_json::from_str(&ok(&s.aws(
        &aws,
        a,
        &[
            "s3api",
            "head-object",
            "--bucket",
            "photos",
            "--key",
            "big.bin",
        ],
    )))
    .expect("json");
    let etag = head["ETag"].as_str().expect("etag");
    assert!(etag.ends_with("-2\""), "multipart etag {etag}");

    // Listings: delimiter, prefixes, recursive.
    let top = ok(&s.aws(&aws, a, &["s3", "ls", "s3://photos/"]));
    assert!(
        top.contains("PRE 2024/") && top.contains("big.bin"),
        "{top}"
    );
    let under = ok(&s.aws(&aws, a, &["s3", "ls", "s3://photos/2024/"]));
    assert!(
        under.contains("PRE feb/") && under.contains("PRE jan/"),
        "{under}"
    );
    let all = ok(&s.aws(&aws, a, &["s3", "ls", "--recursive", "s3://photos"]));
    let keys: Vec<&str> = all
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .collect();
    assert_eq!(
        keys,
        ["2024/feb/x.txt", "2024/jan/small.txt", "big.bin"],
        "{all}"
    );
    let v2: serde_json::Value = serde_json::from_str(&ok(&s.aws(
        &aws,
        a,
        &[
            "s3api",
            "list-objects-v2",
            "--bucket",
            "photos",
            "--prefix",
            "2024/",
            "--delimiter",
            "/",
        ],
    )))
    .expect("json");
    assert_eq!(v2["CommonPrefixes"][0]["Prefix"], "2024/feb/");
    assert_eq!(v2["CommonPrefixes"][1]["Prefix"], "2024/jan/");

    // Ranged and conditional GETs.
    let out = s.c.root.path().join("range.out");
    let out_s = out.to_string_lossy().into_owned();
    ok(&s.aws(
        &aws,
        a,
        &[
            "s3api",
            "get-object",
            "--bucket",
            "photos",
            "--key",
            "big.bin",
            "--range",
            "bytes=1000-1999",
            &out_s,
        ],
    ));
    assert_eq!(std::fs::read(&out).expect("range"), &big[1000..2000]);
    fails_with(
        &s.aws(
            &aws,
            a,
            &[
                "s3api",
                "get-object",
                "--bucket",
                "photos",
                "--key",
                "big.bin",
                "--if-none-match",
                etag,
                &out_s,
            ],
        ),
        "304",
    );
    fails_with(
        &s.aws(
            &aws,
            a,
            &[
                "s3api",
                "get-object",
                "--bucket",
                "photos",
                "--key",
                "big.bin",
                "--if-match",
                "\"0123\"",
                &out_s,
            ],
        ),
        "PreconditionFailed",
    );

    // The multipart object, read with Manta's own mget.
    let mget = s.c.manta("mget", &["/alice/stor/photos/big.bin"]);
    assert!(mget.status.success(), "{}", describe(&mget));
    assert_eq!(mget.stdout.len(), big.len());
    assert!(mget.stdout == big, "mget reads what aws s3 cp wrote");
    let mls = ok(&s.c.manta("mls", &["/alice/stor/photos/2024"]));
    assert_eq!(mls, "feb/\njan/\n");

    // And the reverse: mput, then aws s3 cp down.
    s.c.mput("/alice/stor/photos/from-manta.txt", b"written by mput\n");
    let down = s.c.root.path().join("down.txt");
    ok(&s.aws(
        &aws,
        a,
        &[
            "s3",
            "cp",
            "s3://photos/from-manta.txt",
            &down.to_string_lossy(),
        ],
    ));
    assert_eq!(std::fs::read(&down).expect("down"), b"written by mput\n");

    // Copy, delete, delete-objects, and a bucket that is not empty.
    ok(&s.aws(
        &aws,
        a,
        &[
            "s3",
            "cp",
            "s3://photos/big.bin",
            "s3://photos/copy/big2.bin",
        ],
    ));
    let mget = s.c.manta("mget", &["/alice/stor/photos/copy/big2.bin"]);
    assert!(mget.stdout == big, "{}", describe(&mget));
    fails_with(
        &s.aws(&aws, a, &["s3", "rb", "s3://photos"]),
        "BucketNotEmpty",
    );
    ok(&s.aws(&aws, a, &["s3", "rm", "s3://photos/copy/big2.bin"]));
    let top = ok(&s.aws(&aws, a, &["s3", "ls", "s3://photos/"]));
    assert!(
        !top.contains("copy/"),
        "an emptied prefix disappears: {top}"
    );
    let del = ok(&s.aws(
        &aws,
        a,
        &[
            "s3api",
            "delete-objects",
            "--bucket",
            "photos",
            "--delete",
            r#"{"Objects":[{"Key":"2024/jan/small.txt"},{"Key":"2024/feb/x.txt"},{"Key":"nope"}]}"#,
        ],
    ));
    assert!(del.contains("2024/jan/small.txt"), "{del}");
    let all = ok(&s.aws(&aws, a, &["s3", "ls", "--recursive", "s3://photos"]));
    let keys: Vec<&str> = all
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .collect();
    assert_eq!(keys, ["big.bin", "from-manta.txt"], "{all}");
    ok(&s.aws(&aws, a, &["s3", "rm", "--recursive", "s3://photos"]));
    ok(&s.aws(&aws, a, &["s3", "rb", "s3://photos"]));
    let ls = ok(&s.aws(&aws, a, &["s3", "ls"]));
    assert!(!ls.contains("photos"), "{ls}");
}

const BOTO_PRELUDE: &str = r#"
import os, sys, json, urllib.request, urllib.error, datetime, hashlib
import boto3, botocore
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["S3_URL"],
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
def code(f):
    try:
        f()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    return "ok"
"#;

#[test]
fn boto3_session_pagination_conditions_presigned_and_isolation() {
    if require("boto3", &tools().join("python3")).is_none() {
        return;
    }
    let mut s = S3Cluster::start();
    // A second account with its own key, and one object of alice's made
    // with mput before the restarts.
    s.c.add_tenant("bob").expect("tenant bob");
    let bob = keys_from(&s.c.admin(&["s3-key", "add", "bob"]).expect("bob's key"));
    let list = s.c.admin(&["s3-key", "list", "alice"]).expect("list");
    assert!(list.contains(&s.alice.id), "{list}");
    assert!(!list.contains(&s.alice.secret), "secrets are never listed");
    ok(&s.c.manta("mmkdir", &["-p", "/alice/stor/data/m"]));
    s.c.mput("/alice/stor/data/m/manta.txt", b"from manta\n");

    let script = format!(
        r#"{BOTO_PRELUDE}
b = "data"
# "a-b" sorts before "a/x" (bytewise), though the directory "a" lists
# before the object "a-b".
for k in ["a-b", "a/x", "a/y/z", "a0", "b", "c.txt"]:
    s3.put_object(Bucket=b, Key=k, Body=("body of " + k).encode(), Metadata={{"color": "blue"}})
# Pagination with continuation tokens, in S3's byte order.
keys, token = [], None
while True:
    kw = dict(Bucket=b, MaxKeys=2)
    if token: kw["ContinuationToken"] = token
    r = s3.list_objects_v2(**kw)
    keys += [o["Key"] for o in r.get("Contents", [])]
    assert r["KeyCount"] <= 2
    if not r["IsTruncated"]: break
    token = r["NextContinuationToken"]
print("keys", json.dumps(keys))
r = s3.list_objects_v2(Bucket=b, Delimiter="/")
print("top", json.dumps([o["Key"] for o in r.get("Contents", [])]), json.dumps([p["Prefix"] for p in r.get("CommonPrefixes", [])]))
r = s3.list_objects_v2(Bucket=b, Prefix="a", Delimiter="/", MaxKeys=2)
print("prefix-a", json.dumps([o["Key"] for o in r.get("Contents", [])]), json.dumps([p["Prefix"] for p in r.get("CommonPrefixes", [])]), r["IsTruncated"])
r = s3.list_objects_v2(Bucket=b, StartAfter="a/x")
print("after", json.dumps([o["Key"] for o in r.get("Contents", [])]))
r = s3.list_objects(Bucket=b, Prefix="a/", Delimiter="/")
print("v1", json.dumps([o["Key"] for o in r.get("Contents", [])]), json.dumps([p["Prefix"] for p in r.get("CommonPrefixes", [])]))
# Metadata round trip and the Manta-written object.
h = s3.head_object(Bucket=b, Key="a-b")
print("meta", h["Metadata"].get("color"), h["ETag"] == '"' + hashlib.md5(b"body of a-b").hexdigest() + '"')
print("manta", s3.get_object(Bucket=b, Key="m/manta.txt")["Body"].read().decode().strip())
# Conditions.
etag = h["ETag"]
print("if-match-bad", code(lambda: s3.get_object(Bucket=b, Key="a-b", IfMatch='"nope"')))
print("if-none-match", code(lambda: s3.get_object(Bucket=b, Key="a-b", IfNoneMatch=etag)))
future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
print("if-modified-since", code(lambda: s3.get_object(Bucket=b, Key="a-b", IfModifiedSince=future)))
print("if-match-ok", s3.get_object(Bucket=b, Key="a-b", IfMatch=etag)["Body"].read().decode())
print("put-if-none-match", code(lambda: s3.put_object(Bucket=b, Key="a-b", Body=b"x", IfNoneMatch="*")))
print("range", s3.get_object(Bucket=b, Key="c.txt", Range="bytes=-3")["Body"].read().decode())
print("bad-range", code(lambda: s3.get_object(Bucket=b, Key="c.txt", Range="bytes=100-200")))
print("missing", code(lambda: s3.get_object(Bucket=b, Key="nope")), code(lambda: s3.get_object(Bucket="nobucket", Key="x")))
# Copy with replaced metadata, then delete_objects.
s3.copy_object(Bucket=b, Key="copied/c.txt", CopySource={{"Bucket": b, "Key": "c.txt"}}, Metadata={{"k": "v"}}, MetadataDirective="REPLACE")
h = s3.head_object(Bucket=b, Key="copied/c.txt")
print("copy", h["Metadata"], s3.get_object(Bucket=b, Key="copied/c.txt")["Body"].read().decode())
r = s3.delete_objects(Bucket=b, Delete={{"Objects": [{{"Key": "a0"}}, {{"Key": "a/x"}}, {{"Key": "copied/c.txt"}}]}})
print("deleted", sorted(d["Key"] for d in r["Deleted"]))
# Multipart with the low-level calls: ETag md5-of-md5s.
up = s3.create_multipart_upload(Bucket=b, Key="mp/obj", ContentType="text/plain", Metadata={{"part": "y"}})
p1, p2 = b"1" * (5 << 20), b"2" * 1000
e1 = s3.upload_part(Bucket=b, Key="mp/obj", UploadId=up["UploadId"], PartNumber=1, Body=p1)["ETag"]
e2 = s3.upload_part(Bucket=b, Key="mp/obj", UploadId=up["UploadId"], PartNumber=2, Body=p2)["ETag"]
parts = s3.list_parts(Bucket=b, Key="mp/obj", UploadId=up["UploadId"])["Parts"]
print("parts", [(p["PartNumber"], p["Size"]) for p in parts])
print("bad-order", code(lambda: s3.complete_multipart_upload(Bucket=b, Key="mp/obj", UploadId=up["UploadId"], MultipartUpload={{"Parts": [{{"PartNumber": 2, "ETag": e2}}, {{"PartNumber": 1, "ETag": e1}}]}})))
r = s3.complete_multipart_upload(Bucket=b, Key="mp/obj", UploadId=up["UploadId"], MultipartUpload={{"Parts": [{{"PartNumber": 1, "ETag": e1}}, {{"PartNumber": 2, "ETag": e2}}]}})
want = hashlib.md5(hashlib.md5(p1).digest() + hashlib.md5(p2).digest()).hexdigest() + "-2"
print("mpu-etag", r["ETag"] == '"' + want + '"')
o = s3.get_object(Bucket=b, Key="mp/obj")
print("mpu-body", o["Body"].read() == p1 + p2, o["ContentType"], o["Metadata"])
print("gone-upload", code(lambda: s3.list_parts(Bucket=b, Key="mp/obj", UploadId=up["UploadId"])))
up = s3.create_multipart_upload(Bucket=b, Key="mp/aborted")
s3.upload_part(Bucket=b, Key="mp/aborted", UploadId=up["UploadId"], PartNumber=1, Body=b"x")
s3.abort_multipart_upload(Bucket=b, Key="mp/aborted", UploadId=up["UploadId"])
print("aborted", code(lambda: s3.head_object(Bucket=b, Key="mp/aborted")))
# Presigned URLs: a fresh one works, an expired one is refused.
url = s3.generate_presigned_url("get_object", Params={{"Bucket": b, "Key": "c.txt"}}, ExpiresIn=300)
print("presigned", urllib.request.urlopen(url).read().decode())
import botocore.auth as ba
class Past(datetime.datetime):
    @classmethod
    def utcnow(cls): return datetime.datetime.utcnow() - datetime.timedelta(hours=2)
    @classmethod
    def now(cls, tz=None): return datetime.datetime.now(tz) - datetime.timedelta(hours=2)
_td, _tz = datetime.timedelta, datetime.timezone
class Shim:
    datetime = Past
    timedelta = _td
    timezone = _tz
real = ba.datetime
ba.datetime = Shim
old = s3.generate_presigned_url("get_object", Params={{"Bucket": b, "Key": "c.txt"}}, ExpiresIn=60)
ba.datetime = real
try:
    urllib.request.urlopen(old); print("expired", "served")
except urllib.error.HTTPError as e:
    print("expired", e.code, "AccessDenied" in e.read().decode())
tampered = url.replace("c.txt", "a-b")
try:
    urllib.request.urlopen(tampered); print("tampered", "served")
except urllib.error.HTTPError as e:
    print("tampered", e.code, "SignatureDoesNotMatch" in e.read().decode())
"#
    );
    let out = s.python(&s.alice, &script);
    let got = ok(&out);
    let line = |p: &str| -> String {
        got.lines()
            .find_map(|l| l.strip_prefix(&format!("{p} ")))
            .unwrap_or_else(|| panic!("no {p} line in {got}"))
            .to_owned()
    };
    assert_eq!(
        line("keys"),
        r#"["a-b", "a/x", "a/y/z", "a0", "b", "c.txt", "m/manta.txt"]"#
    );
    assert_eq!(line("top"), r#"["a-b", "a0", "b", "c.txt"] ["a/", "m/"]"#);
    assert_eq!(line("prefix-a"), r#"["a-b"] ["a/"] True"#);
    assert_eq!(
        line("after"),
        r#"["a/y/z", "a0", "b", "c.txt", "m/manta.txt"]"#
    );
    assert_eq!(line("v1"), r#"["a/x"] ["a/y/"]"#);
    assert_eq!(line("meta"), "blue True");
    assert_eq!(line("manta"), "from manta");
    assert_eq!(line("if-match-bad"), "PreconditionFailed");
    assert_eq!(line("if-none-match"), "304");
    assert_eq!(line("if-modified-since"), "304");
    assert_eq!(line("if-match-ok"), "body of a-b");
    assert_eq!(line("put-if-none-match"), "PreconditionFailed");
    assert_eq!(line("range"), "txt");
    assert_eq!(line("bad-range"), "InvalidRange");
    assert_eq!(line("missing"), "NoSuchKey NoSuchBucket");
    assert_eq!(line("copy"), "{'k': 'v'} body of c.txt");
    assert_eq!(line("deleted"), "['a/x', 'a0', 'copied/c.txt']");
    assert_eq!(line("parts"), "[(1, 5242880), (2, 1000)]");
    assert_eq!(line("bad-order"), "InvalidPartOrder");
    assert_eq!(line("mpu-etag"), "True");
    assert_eq!(line("mpu-body"), "True text/plain {'part': 'y'}");
    assert_eq!(line("gone-upload"), "NoSuchUpload");
    assert_eq!(line("aborted"), "404");
    assert_eq!(line("presigned"), "body of c.txt");
    assert_eq!(line("expired"), "403 True");
    assert_eq!(line("tampered"), "403 True");

    // The multipart object is an ordinary object to Manta too.
    let m = s.c.manta("mget", &["/alice/stor/data/mp/obj"]);
    assert!(m.status.success(), "{}", describe(&m));
    assert_eq!(m.stdout.len(), (5 << 20) + 1000);

    // Bob's key reaches only bob's account: alice's bucket does not exist
    // for him, in any operation, and his listing holds only his buckets.
    let script = format!(
        r#"{BOTO_PRELUDE}
s3.create_bucket(Bucket="bobs")
print("buckets", [x["Name"] for x in s3.list_buckets()["Buckets"]])
print("list", code(lambda: s3.list_objects_v2(Bucket="data")))
print("get", code(lambda: s3.get_object(Bucket="data", Key="c.txt")))
print("head", code(lambda: s3.head_object(Bucket="data", Key="c.txt")))
print("put", code(lambda: s3.put_object(Bucket="data", Key="evil", Body=b"x")))
print("copy", code(lambda: s3.copy_object(Bucket="bobs", Key="stolen", CopySource={{"Bucket": "data", "Key": "c.txt"}})))
print("delete", code(lambda: s3.delete_object(Bucket="data", Key="c.txt")))
print("mpu", code(lambda: s3.create_multipart_upload(Bucket="data", Key="evil")))
"#
    );
    let got = ok(&s.python(&bob, &script));
    assert!(got.contains("buckets ['bobs']"), "{got}");
    for op in ["list", "get", "head", "put", "copy", "delete", "mpu"] {
        let l = got
            .lines()
            .find(|l| l.starts_with(&format!("{op} ")))
            .unwrap_or_else(|| panic!("{op} in {got}"));
        assert!(
            l.ends_with("NoSuchBucket") || l.ends_with("NoSuchKey") || l.ends_with("404"),
            "bob's {op} on alice's bucket must fail: {l}"
        );
    }
    // Alice's object is untouched.
    let m = s.c.manta("mget", &["/alice/stor/data/c.txt"]);
    assert_eq!(stdout(&m), "body of c.txt");

    // A wrong secret, an unknown key, and no signature at all.
    let wrong = Keys {
        id: s.alice.id.clone(),
        secret: "x".repeat(40),
    };
    let probe = format!("{BOTO_PRELUDE}\nprint('r', code(lambda: s3.list_buckets()))\n");
    assert!(ok(&s.python(&wrong, &probe)).contains("r SignatureDoesNotMatch"));
    let unknown = Keys {
        id: "TPNOSUCHKEY000000000".into(),
        secret: "x".repeat(40),
    };
    assert!(ok(&s.python(&unknown, &probe)).contains("r InvalidAccessKeyId"));

    // Hostile requests: anonymous, malformed XML, an oversized header.
    let script = format!(
        r#"{BOTO_PRELUDE}
from botocore.awsrequest import AWSRequest
from botocore.auth import S3SigV4Auth
import base64
base = os.environ["S3_URL"]
def send(method, url, body=b"", headers={{}}, sign=True):
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    if sign:
        creds = boto3.Session().get_credentials()
        S3SigV4Auth(creds, "s3", "us-east-1").add_auth(req)
    r = urllib.request.Request(req.url, data=body or None, headers=dict(req.headers), method=method)
    try:
        with urllib.request.urlopen(r) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except Exception as e:
        return "closed", type(e).__name__
st, body = send("GET", base + "/data", sign=False)
print("anonymous", st, "AccessDenied" in body)
bad = b"<Delete><Object><Key>x</Key></Obj"
md5 = base64.b64encode(hashlib.md5(bad).digest()).decode()
st, body = send("POST", base + "/data?delete", bad, {{"Content-MD5": md5}})
print("malformed", st, "MalformedXML" in body)
st, body = send("GET", base + "/data", headers={{"X-Huge": "a" * (1 << 20)}})
print("huge", st)
st, body = send("GET", base + "/")
print("after", st, "<Name>data</Name>" in body)
"#
    );
    let got = ok(&s.python(&s.alice, &script));
    assert!(got.contains("anonymous 403 True"), "{got}");
    assert!(got.contains("malformed 400 True"), "{got}");
    let huge = got
        .lines()
        .find_map(|l| l.strip_prefix("huge "))
        .unwrap_or("");
    assert!(
        huge.starts_with('4') || huge == "closed",
        "an oversized header is refused: {got}"
    );
    assert!(
        got.contains("after 200 True"),
        "the server still answers: {got}"
    );
    assert!(s.c.is_running(), "the server survived");

    // Subusers hold no S3 keys; a removed key stops working.
    let refused = s.c.admin(&["s3-key", "add", "alice/sub"]);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("subusers")),
        "{refused:?}"
    );
    s.c.admin(&["s3-key", "rm", "bob", &bob.id])
        .expect("s3-key rm");
    assert!(ok(&s.python(&bob, &probe)).contains("r InvalidAccessKeyId"));
}

#[test]
fn rclone_session() {
    let Some(rclone) = rclone() else {
        return;
    };
    let s = S3Cluster::start();
    let src = s.c.root.path().join("tree");
    std::fs::create_dir_all(src.join("sub/deeper")).expect("tree");
    std::fs::write(src.join("a.txt"), b"alpha beta gamma\n").expect("a");
    std::fs::write(src.join("sub/b.txt"), b"bee\n").expect("b");
    std::fs::write(src.join("sub/deeper/c.bin"), payload(12 << 20, 3)).expect("c");
    let run = |args: &[&str]| -> Output {
        let mut cmd = Command::new(&rclone);
        cmd.env_clear()
            .envs(s.env(&s.alice))
            .env("RCLONE_CONFIG", "/dev/null")
            .env("RCLONE_CONFIG_TP_TYPE", "s3")
            .env("RCLONE_CONFIG_TP_PROVIDER", "Other")
            .env("RCLONE_CONFIG_TP_ENDPOINT", s.url())
            .env("RCLONE_CONFIG_TP_ACCESS_KEY_ID", &s.alice.id)
            .env("RCLONE_CONFIG_TP_SECRET_ACCESS_KEY", &s.alice.secret)
            .env("RCLONE_CONFIG_TP_FORCE_PATH_STYLE", "true")
            // (Bucket names have at least 3 characters, as in S3.)
            // Multipart above 5 MiB: the 12 MiB file goes in parts.
            .env("RCLONE_S3_UPLOAD_CUTOFF", "5M")
            .env("RCLONE_S3_CHUNK_SIZE", "5M")
            .args(args);
        run_with_deadline(&mut cmd, None, Duration::from_secs(300))
    };
    let tree = src.to_string_lossy().into_owned();
    ok(&run(&["mkdir", "tp:rcl"]));
    ok(&run(&["copy", &tree, "tp:rcl/tree"]));
    let ls = ok(&run(&["ls", "tp:rcl"]));
    let mut names: Vec<&str> = ls
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["tree/a.txt", "tree/sub/b.txt", "tree/sub/deeper/c.bin"],
        "{ls}"
    );
    let dirs = ok(&run(&["lsf", "--dirs-only", "tp:rcl/tree"]));
    assert_eq!(dirs, "sub/\n");
    // Contents compared both ways (sizes and hashes).
    ok(&run(&["check", &tree, "tp:rcl/tree"]));
    let part = ok(&run(&[
        "cat",
        "--offset",
        "6",
        "--count",
        "4",
        "tp:rcl/tree/a.txt",
    ]));
    assert_eq!(part, "beta");
    // Server-side copy, delete, and what Manta sees.
    ok(&run(&[
        "copyto",
        "tp:rcl/tree/sub/b.txt",
        "tp:rcl/copy/b2.txt",
    ]));
    let m = s.c.manta("mget", &["/alice/stor/rcl/copy/b2.txt"]);
    assert_eq!(stdout(&m), "bee\n");
    let m =
        s.c.manta("mget", &["/alice/stor/rcl/tree/sub/deeper/c.bin"]);
    assert!(m.stdout == payload(12 << 20, 3), "{}", describe(&m));
    ok(&run(&["deletefile", "tp:rcl/copy/b2.txt"]));
    let ls = ok(&run(&["lsf", "tp:rcl"]));
    assert_eq!(ls, "tree/\n", "the emptied prefix is gone");
    ok(&run(&["purge", "tp:rcl"]));
    let m = s.c.manta("mls", &["/alice/stor"]);
    assert!(!stdout(&m).contains("rcl/"), "{}", describe(&m));
}

#[test]
fn mjob_over_objects_written_with_aws_cli() {
    let Some(aws) = require("aws-cli", &tools().join("aws")) else {
        return;
    };
    let s = S3Cluster::start();
    let a = &s.alice;
    ok(&s.aws(&aws, a, &["s3", "mb", "s3://logs"]));
    let bodies: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            (0..40 + i * 13)
                .map(|n| {
                    format!(
                        "GET /page{} {}\n",
                        n % (3 + i),
                        if n % 4 == 0 { 404 } else { 200 }
                    )
                })
                .collect::<String>()
                .into_bytes()
        })
        .collect();
    let mut inputs = String::new();
    for (i, b) in bodies.iter().enumerate() {
        let f = s.file(&format!("log{i}"), b);
        ok(&s.aws(
            &aws,
            a,
            &["s3", "cp", &f, &format!("s3://logs/day/{i}.log")],
        ));
        inputs.push_str(&format!("/alice/stor/logs/day/{i}.log\n"));
    }
    let got = ok(&s.c.manta_stdin(
        "mjob",
        &["create", "-o", "-m", "grep 404", "-r", "sort | uniq -c"],
        inputs.as_bytes(),
    ));
    let all: Vec<u8> = bodies.concat();
    let want = host_sh("grep 404 | sort | uniq -c", &all);
    let norm = |s: &str| -> Vec<String> {
        let mut v: Vec<String> = s
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        v.sort();
        v
    };
    assert_eq!(norm(&got), norm(&want));
    assert!(!want.is_empty());
}
