//! `iamra update` and the credentials-file rewriter: every preservation case with
//! exact bytes, a property test over generated files, concurrent writers and readers,
//! modes and locking, refresh under faults, rotation, secret hygiene, and botocore
//! reading what we wrote (and running our credential_process).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use iamra::credentials::TemporaryCredentials;
use iamra::output::credentials_file::{self, EXPIRATION_COMMENT, KEYS};
use rand::{Rng as _, SeedableRng as _};
use secrecy::SecretString;

use crate::common::*;

fn creds(ak: &str, sk: &str, token: &str) -> TemporaryCredentials {
    TemporaryCredentials::new(
        ak.into(),
        SecretString::from(sk),
        SecretString::from(token),
        "2026-12-01T21:00:00Z".into(),
        ::time::macros::datetime!(2026-12-01 21:00:00 UTC),
    )
}

fn fixed() -> TemporaryCredentials {
    creds("ASIA1", "secret1", "token1")
}

fn rewrite(input: &[u8], profile: &str) -> Vec<u8> {
    credentials_file::rewrite(input, profile, &fixed())
        .unwrap()
        .to_vec()
}

const C: &str = "# iamra: credentials expire at 2026-12-01T21:00:00Z";
const K1: &str = "aws_access_key_id = ASIA1";
const K2: &str = "aws_secret_access_key = secret1";
const K3: &str = "aws_session_token = token1";

#[test]
fn update_preserves_every_other_byte_of_the_file() {
    let block = format!("{C}\n{K1}\n{K2}\n{K3}");
    let cases: Vec<(&str, String, String)> = vec![
        ("new file", String::new(), format!("[default]\n{block}\n")),
        (
            "comments, blank lines and other profiles",
            "# my credentials\n\n[other]\naws_access_key_id = OTHER\n\n[default]\naws_access_key_id = OLD\naws_secret_access_key = OLD\naws_session_token = OLD\nregion = eu-west-1\n\n# next\n[third]\nx = 1\n".into(),
            format!("# my credentials\n\n[other]\naws_access_key_id = OTHER\n\n[default]\n{C}\n{K1}\n{K2}\n{K3}\nregion = eu-west-1\n\n# next\n[third]\nx = 1\n"),
        ),
        (
            "key order, spelling and spacing",
            "[default]\naws_session_token=OLD\n  aws_secret_access_key  =  OLD\nAWS_ACCESS_KEY_ID\t= OLD\n".into(),
            format!("[default]\n{C}\naws_session_token=token1\n  aws_secret_access_key  =  secret1\nAWS_ACCESS_KEY_ID\t= ASIA1\n"),
        ),
        (
            "missing final newline, profile at the end",
            "[default]\nregion = x".into(),
            format!("[default]\nregion = x\n{block}"),
        ),
        (
            "missing final newline, profile absent",
            "[other]\nx = 1".into(),
            format!("[other]\nx = 1\n\n[default]\n{block}"),
        ),
        (
            "CRLF line ends",
            "[default]\r\naws_access_key_id = OLD\r\nregion = x\r\n".into(),
            format!("[default]\r\n{C}\r\n{K1}\r\n{K2}\r\n{K3}\r\nregion = x\r\n"),
        ),
        (
            "[profile] on the last line without newline",
            "[other]\nx=1\n[default]".into(),
            format!("[other]\nx=1\n[default]\n{block}"),
        ),
        (
            "[profile] on the last line",
            "[default]\n".into(),
            format!("[default]\n{block}\n"),
        ),
        (
            "duplicate sections: keys updated in both, missing ones added to the first",
            "[default]\naws_access_key_id = A\n[other]\ny=2\n[default]\naws_session_token = B\n".into(),
            format!("[default]\n{block}\n[other]\ny=2\n[default]\n{K3}\n"),
        ),
        (
            "header with spaces and a comment",
            "[ default ]  # mine\nregion=x\n".into(),
            format!("[ default ]  # mine\nregion=x\n{block}\n"),
        ),
        (
            "keys that only start like ours are not ours",
            "[default]\naws_access_key_id_old = keep\naws_session_token_ttl = keep\n".into(),
            format!("[default]\naws_access_key_id_old = keep\naws_session_token_ttl = keep\n{block}\n"),
        ),
        (
            "a setting after the keys on the last line is kept",
            "[default]\naws_access_key_id = OLD\nregion = us-east-1".into(),
            format!("[default]\n{C}\n{K1}\n{K2}\n{K3}\nregion = us-east-1"),
        ),
        (
            "comments before the next section stay with it",
            "[default]\nregion = x\n\n# work account\n[work]\n".into(),
            format!("[default]\nregion = x\n{block}\n\n# work account\n[work]\n"),
        ),
        (
            "our own comment is updated, not repeated",
            "[default]\n# iamra: credentials expire at 2020-01-01T00:00:00Z\naws_access_key_id = OLD\naws_secret_access_key = OLD\naws_session_token = OLD\n".into(),
            format!("[default]\n{block}\n"),
        ),
        (
            "similar names are other profiles",
            "[default-old]\naws_access_key_id = KEEP\n[profile default]\naws_access_key_id = KEEP\n".into(),
            format!("[default-old]\naws_access_key_id = KEEP\n[profile default]\naws_access_key_id = KEEP\n\n[default]\n{block}\n"),
        ),
        (
            "keys before any section are not the profile's",
            "aws_access_key_id = GLOBAL\n[default]\n".into(),
            format!("aws_access_key_id = GLOBAL\n[default]\n{block}\n"),
        ),
        (
            "trailing blank lines: no extra separator",
            "[a]\nx=1\n\n\n".into(),
            format!("[a]\nx=1\n\n\n[default]\n{block}\n"),
        ),
        (
            "a commented-out key stays a comment",
            "[default]\n#aws_access_key_id = commented\n".into(),
            format!("[default]\n{block}\n#aws_access_key_id = commented\n"),
        ),
    ];
    for (name, input, expected) in &cases {
        let out = rewrite(input.as_bytes(), "default");
        assert_eq!(String::from_utf8(out.clone()).unwrap(), *expected, "{name}");
        assert_eq!(
            rewrite(&out, "default"),
            out,
            "{name}: rewriting again changes nothing"
        );
    }
    // Bytes that are not UTF-8 elsewhere in the file survive.
    let input = b"# caf\xe9\n[x]\nk = \xff\xfe\n".to_vec();
    let mut expected = input.clone();
    expected.extend_from_slice(format!("\n[default]\n{block}\n").as_bytes());
    assert_eq!(rewrite(&input, "default"), expected);
    // Another profile name.
    assert_eq!(
        String::from_utf8(rewrite(b"[default]\nx=1\n", "work")).unwrap(),
        format!("[default]\nx=1\n\n[work]\n{block}\n")
    );
}

// ---------------------------------------------------------------------------------
// Property test

/// One generated line (content without line end).
fn gen_line(rng: &mut rand::rngs::StdRng, names: &[&str]) -> Vec<u8> {
    let pick =
        |rng: &mut rand::rngs::StdRng, xs: &[&str]| xs[rng.random_range(0..xs.len())].to_string();
    let value = |rng: &mut rand::rngs::StdRng| {
        let n = rng.random_range(0..12);
        (0..n)
            .map(|_| rng.random_range(b'!'..=b'~') as char)
            .collect::<String>()
    };
    let sp = |rng: &mut rand::rngs::StdRng| pick(rng, &["", " ", "  ", "\t", " \t "]);
    let line = match rng.random_range(0..12) {
        0 | 1 => {
            let name = pick(rng, names);
            match rng.random_range(0..4) {
                0 => format!("[{name}]"),
                1 => format!("[ {name} ]"),
                2 => format!("{}[{name}] # c", sp(rng)),
                _ => format!("[{name}]{}", sp(rng)),
            }
        }
        2..=4 => {
            let key = pick(rng, &KEYS);
            let key = if rng.random_bool(0.3) {
                key.to_ascii_uppercase()
            } else {
                key
            };
            format!("{}{key}{}={}{}", sp(rng), sp(rng), sp(rng), value(rng))
        }
        5 => format!(
            "{} = {}",
            pick(
                rng,
                &[
                    "region",
                    "output",
                    "aws_access_key_id_old",
                    "aws_session_token_expiry",
                    "x_security_token_expires"
                ]
            ),
            value(rng)
        ),
        6 => format!(
            "{}{}{}",
            sp(rng),
            pick(rng, &["#", ";"]),
            pick(
                rng,
                &[" a comment", " aws_access_key_id = fake", "", "[default]"]
            )
        ),
        7 => format!("{EXPIRATION_COMMENT}2020-01-01T00:00:00Z"),
        8 | 9 => sp(rng),
        10 => return vec![0xff, b'j', 0xfe, b'=', b'x'],
        _ => pick(
            rng,
            &[
                "[unterminated",
                "just text",
                "=",
                "[default] trailing",
                "key: value",
            ],
        ),
    };
    line.into_bytes()
}

fn gen_file(rng: &mut rand::rngs::StdRng) -> Vec<u8> {
    let names = ["default", "work", "other", "profile default", "default2"];
    let crlf = rng.random_range(0..3); // 0: LF, 1: CRLF, 2: mixed
    let n = rng.random_range(0..30);
    let mut out = Vec::new();
    for i in 0..n {
        out.extend(gen_line(rng, &names));
        let last = i + 1 == n;
        if last && rng.random_bool(0.3) {
            break;
        }
        let use_crlf = match crlf {
            0 => false,
            1 => true,
            _ => rng.random_bool(0.5),
        };
        out.extend_from_slice(if use_crlf { b"\r\n" } else { b"\n" });
    }
    out
}

/// A line as the spec sees it.
fn split(data: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut v = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let (c, e) = if i > 0 && rest[i - 1] == b'\r' {
                    (&rest[..i - 1], &rest[i - 1..=i])
                } else {
                    (&rest[..i], &rest[i..=i])
                };
                v.push((c, e));
                rest = &rest[i + 1..];
            }
            None => {
                v.push((rest, &rest[rest.len()..]));
                rest = &[];
            }
        }
    }
    v
}

fn trim(s: &[u8]) -> &[u8] {
    let is_sp = |b: &u8| *b == b' ' || *b == b'\t';
    let start = s.iter().position(|b| !is_sp(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !is_sp(b)).map_or(start, |e| e + 1);
    &s[start..end]
}

/// `Some(name)` for a section header.
fn header(line: &[u8]) -> Option<&[u8]> {
    let t = trim(line);
    if t.first() != Some(&b'[') {
        return None;
    }
    let close = t.iter().position(|&b| b == b']')?;
    let rest = trim(&t[close + 1..]);
    (rest.is_empty() || rest[0] == b'#' || rest[0] == b';').then(|| trim(&t[1..close]))
}

/// `Some(index into KEYS, value)` for one of our keys.
fn managed_key(line: &[u8]) -> Option<(usize, &[u8])> {
    let t = trim(line);
    if t.first().is_some_and(|b| *b == b'#' || *b == b';') {
        return None;
    }
    let eq = line.iter().position(|&b| b == b'=')?;
    let key = trim(&line[..eq]);
    let i = KEYS
        .iter()
        .position(|k| key.eq_ignore_ascii_case(k.as_bytes()))?;
    Some((i, trim(&line[eq + 1..])))
}

fn is_our_comment(line: &[u8]) -> bool {
    trim(line).starts_with(EXPIRATION_COMMENT.as_bytes())
}

/// The lines outside the profile's keys and comment, and per target section the
/// managed lines: `(kept lines, sections)`.
#[allow(clippy::type_complexity)]
fn analyse<'a>(data: &'a [u8], profile: &str) -> (Vec<(&'a [u8], &'a [u8])>, Vec<Vec<&'a [u8]>>) {
    let mut kept = Vec::new();
    let mut sections: Vec<Vec<&[u8]>> = Vec::new();
    let mut inside = false;
    for (content, eol) in split(data) {
        if let Some(name) = header(content) {
            inside = name == profile.as_bytes();
            if inside {
                sections.push(Vec::new());
            }
            kept.push((content, eol));
            continue;
        }
        if inside && (managed_key(content).is_some() || is_our_comment(content)) {
            if let Some(s) = sections.last_mut() {
                s.push(content);
            }
        } else {
            kept.push((content, eol));
        }
    }
    (kept, sections)
}

#[test]
fn update_changes_only_the_profiles_keys_in_generated_files() {
    let seed: u64 = std::env::var("IAMRA_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let new = creds("ASIANEW", "new/secret+", "new-token=");
    let comment = format!("{EXPIRATION_COMMENT}2026-12-01T21:00:00Z");
    for case in 0..3000 {
        let input = gen_file(&mut rng);
        let profile = ["default", "work", "profile default"][case % 3];
        let out = credentials_file::rewrite(&input, profile, &new)
            .unwrap()
            .to_vec();
        let ctx = || {
            format!(
                "seed {seed} case {case}: input {:?} output {:?}",
                String::from_utf8_lossy(&input),
                String::from_utf8_lossy(&out)
            )
        };
        let (kept_in, sections_in) = analyse(&input, profile);
        let (kept_out, sections_out) = analyse(&out, profile);
        // Every other line is where it was, with its line end (only the old last
        // line may gain one when something is added after it).
        let mut expected = kept_in.clone();
        if sections_in.is_empty() {
            assert_eq!(sections_out.len(), 1, "{}", ctx());
            let added = &kept_out[kept_in.len()..];
            let names: Vec<&[u8]> = added.iter().map(|(c, _)| *c).collect();
            let header = format!("[{profile}]");
            assert!(
                names == [header.as_bytes()] || names == [b"".as_slice(), header.as_bytes()],
                "{}",
                ctx()
            );
            expected.extend_from_slice(added);
        } else {
            assert_eq!(sections_out.len(), sections_in.len(), "{}", ctx());
        }
        assert_eq!(kept_out.len(), expected.len(), "{}", ctx());
        for (i, (a, b)) in kept_out.iter().zip(&expected).enumerate() {
            assert_eq!(a.0, b.0, "line {i}: {}", ctx());
            if i + 1 < kept_in.len() {
                assert_eq!(a.1, b.1, "line end {i}: {}", ctx());
            }
        }
        // The profile's managed lines all carry the new values; the first section has
        // all three keys and the comment.
        for (n, section) in sections_out.iter().enumerate() {
            for line in section {
                match managed_key(line) {
                    Some((k, v)) => {
                        let want = [
                            new.access_key_id(),
                            new.secret_access_key(),
                            new.session_token(),
                        ][k];
                        assert_eq!(v, want.as_bytes(), "{}", ctx());
                    }
                    None => assert_eq!(trim(line), comment.as_bytes(), "{}", ctx()),
                }
            }
            if n == 0 {
                for k in 0..3 {
                    assert!(
                        section
                            .iter()
                            .any(|l| managed_key(l).is_some_and(|(i, _)| i == k)),
                        "key {k}: {}",
                        ctx()
                    );
                }
                assert!(section.iter().any(|l| is_our_comment(l)), "{}", ctx());
            } else {
                assert_eq!(
                    section.len(),
                    sections_in[n].len(),
                    "later duplicates gain nothing: {}",
                    ctx()
                );
            }
        }
        assert_eq!(
            out.ends_with(b"\n"),
            input.is_empty() || input.ends_with(b"\n"),
            "final newline kept as it was: {}",
            ctx()
        );
        let again = credentials_file::rewrite(&out, profile, &new)
            .unwrap()
            .to_vec();
        assert_eq!(again, out, "idempotent: {}", ctx());
    }
}

// ---------------------------------------------------------------------------------
// Files, modes, locking

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn update_writes_atomically_with_safe_modes() {
    let dir = tempfile::tempdir().unwrap();
    // A new file in a new folder: 0600 in 0700.
    let path = dir.path().join("new/.aws/credentials");
    credentials_file::write_profile(&path, "default", &fixed()).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(mode(&dir.path().join("new")), 0o700);
    assert_eq!(mode(&path.with_file_name("credentials.lock")), 0o600);
    // An existing file readable by others is tightened to 0600: it now holds a
    // secret key (as the AWS CLI writes it).
    let shared = dir.path().join("shared");
    std::fs::write(&shared, "[x]\ny = 1\n").unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
    credentials_file::write_profile(&shared, "default", &fixed()).unwrap();
    assert_eq!(mode(&shared), 0o600);
    assert!(
        std::fs::read_to_string(&shared)
            .unwrap()
            .starts_with("[x]\ny = 1\n\n[default]\n")
    );
    // A symlink stays a symlink; its target is replaced.
    let target = dir.path().join("real-credentials");
    std::fs::write(&target, "").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    credentials_file::write_profile(&link, "default", &fixed()).unwrap();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(std::fs::read_to_string(&target).unwrap().contains("ASIA1"));
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // A symlink planted as the lock file is not followed.
    let victim = dir.path().join("victim");
    let guarded = dir.path().join("guarded");
    std::os::unix::fs::symlink(&victim, dir.path().join("guarded.lock")).unwrap();
    let e = credentials_file::write_profile(&guarded, "default", &fixed()).unwrap_err();
    assert!(e.to_string().contains("guarded.lock"), "{e}");
    assert!(!victim.exists(), "the symlink's target was created");
    // A folder is not a file.
    let e = credentials_file::write_profile(dir.path(), "default", &fixed()).unwrap_err();
    assert!(e.to_string().contains("is not a regular file"), "{e}");
}

/// Parses our generated profiles `w<N>`: `(round of each key)` per writer.
fn rounds(text: &str, writers: usize) -> Result<Vec<u32>, String> {
    let mut out = vec![None; writers];
    let mut current: Option<usize> = None;
    let mut seen = vec![[None::<u32>; 3]; writers];
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("[w").and_then(|l| l.strip_suffix(']')) {
            current = name.parse().ok();
            continue;
        }
        let Some(w) = current else { continue };
        for (k, key) in KEYS.iter().enumerate() {
            if let Some(v) = line.strip_prefix(&format!("{key} = ")) {
                let round = v
                    .rsplit('R')
                    .next()
                    .and_then(|r| r.parse::<u32>().ok())
                    .ok_or(format!("bad value {v:?}"))?;
                seen[w][k] = Some(round);
            }
        }
    }
    for (w, keys) in seen.iter().enumerate() {
        match keys {
            [Some(a), Some(b), Some(c)] if a == b && b == c => out[w] = Some(*a),
            other => return Err(format!("profile w{w} is incomplete or mixed: {other:?}")),
        }
    }
    if !text.starts_with("# shared by many writers\n") {
        return Err("the first line is gone".into());
    }
    Ok(out.into_iter().map(|r| r.unwrap_or_default()).collect())
}

#[test]
fn update_concurrent_writers_and_readers_never_see_a_partial_file_or_lose_a_write() {
    const WRITERS: usize = 6;
    const ROUNDS: u32 = 60;
    let dir = tempfile::tempdir().unwrap();
    let path = Arc::new(dir.path().join("credentials"));
    std::fs::write(path.as_ref(), "# shared by many writers\n").unwrap();
    std::fs::set_permissions(path.as_ref(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let initial_mode = mode(&path);
    let make = |w: usize, r: u32| {
        creds(
            &format!("ASIA{w}R{r}"),
            &format!("secret{w}R{r}"),
            &format!("token{w}R{r}"),
        )
    };
    for w in 0..WRITERS {
        credentials_file::write_profile(&path, &format!("w{w}"), &make(w, 0)).unwrap();
    }
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let path = path.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let mut last = vec![0u32; WRITERS];
                let mut reads = 0u32;
                while !done.load(Ordering::SeqCst) || reads == 0 {
                    let text = std::fs::read_to_string(path.as_ref()).unwrap();
                    let now = rounds(&text, WRITERS)
                        .unwrap_or_else(|e| panic!("partial file: {e}\n{text}"));
                    for (w, (n, l)) in now.iter().zip(&last).enumerate() {
                        assert!(n >= l, "writer {w} went back from round {l} to {n}");
                    }
                    last = now;
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || {
                for r in 1..=ROUNDS {
                    credentials_file::write_profile(&path, &format!("w{w}"), &make(w, r)).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    let text = std::fs::read_to_string(path.as_ref()).unwrap();
    assert_eq!(
        rounds(&text, WRITERS).unwrap(),
        vec![ROUNDS; WRITERS],
        "no write lost"
    );
    assert_eq!(mode(&path), initial_mode, "the file keeps its mode");
}

#[test]
fn update_processes_for_different_profiles_never_lose_each_others_writes() {
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    for _round in 0..3 {
        let children: Vec<_> = (0..4)
            .map(|p| {
                let mut args = vec![
                    "update".to_string(),
                    "--once".into(),
                    "--profile".into(),
                    format!("p{p}"),
                ];
                args.extend(credential_flags(&ep, &td("ec-p256/combined.pem"), None));
                iamra_command(
                    &args,
                    &[("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap())],
                )
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for p in 0..4 {
            let section = text
                .split(&format!("[p{p}]\n"))
                .nth(1)
                .unwrap_or_else(|| panic!("p{p} lost:\n{text}"));
            for key in KEYS {
                assert!(
                    section.contains(&format!("{key} = ")),
                    "p{p} {key}:\n{text}"
                );
            }
        }
        assert_eq!(text.matches("[p").count(), 4, "{text}");
    }
    assert_eq!(log_entries(&ep).len(), 12);
}

// ---------------------------------------------------------------------------------
// The command

fn update_args(ep: &Endpoint, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["update".to_string()];
    args.extend(credential_flags(ep, &td("rsa2048/combined.pem"), None));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn update_once_writes_the_issued_credentials_exactly() {
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deep/folder/credentials");
    let out = iamra(
        &update_args(&ep, &["--once"]),
        &[("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    let text = std::fs::read_to_string(&file).unwrap();
    let (ak, sk, tok, exp) = profile_values(&text, "default");
    assert!(ak.starts_with("ASIA") && !sk.is_empty() && !tok.is_empty());
    assert_eq!(
        text,
        format!(
            "[default]\n{EXPIRATION_COMMENT}{exp}\naws_access_key_id = {ak}\naws_secret_access_key = {sk}\naws_session_token = {tok}\n"
        )
    );
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    assert_eq!(log_entries(&ep).len(), 1);

    // Without AWS_SHARED_CREDENTIALS_FILE: ~/.aws/credentials, ~/.aws made 0700.
    let home = tempfile::tempdir().unwrap();
    let out = iamra(
        &update_args(&ep, &["--once", "--profile", "work"]),
        &[("HOME", home.path().to_str().unwrap())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = home.path().join(".aws/credentials");
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .starts_with("[work]\n")
    );
    assert_eq!(mode(&home.path().join(".aws")), 0o700);
}

#[test]
fn update_errors_name_the_flag_or_file_and_send_nothing() {
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    let env = [("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap())];
    assert_fails_with(
        &iamra(&update_args(&ep, &["--once", "--profile", "a]b"]), &env),
        "iamra: error: --profile \"a]b\" is not a usable profile name: it contains a bracket\n",
    );
    assert_fails_with(
        &iamra(&update_args(&ep, &["--refresh-before", "1h"]), &env),
        "iamra: error: --refresh-before 3600s must be shorter than --session-duration 900\n",
    );
    std::fs::create_dir(&file).unwrap();
    let out = iamra(&update_args(&ep, &["--once"]), &env);
    assert_fails_with(
        &out,
        &format!(
            "iamra: error: credentials file {} is not a regular file\n",
            file.display()
        ),
    );
    assert!(
        log_entries(&ep).is_empty(),
        "local errors are found before CreateSession"
    );
}

#[test]
fn update_refreshes_the_file_until_stopped() {
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    std::fs::write(&file, "# keep me\n[other]\nregion = eu-west-1\n").unwrap();
    let env = [("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap())];
    let d = Daemon::start(&update_args(&ep, &["--refresh-before", "897s"]), &env, 0).unwrap();
    let read = || std::fs::read_to_string(&file).unwrap();
    let first = wait_for("the first write", || {
        let v = profile_values(&read(), "default");
        (!v.0.is_empty()).then_some(v)
    });
    let mut seen = std::collections::HashSet::new();
    let later = wait_for("two refreshes", || {
        let text = read();
        assert!(
            text.starts_with("# keep me\n[other]\nregion = eu-west-1\n\n[default]\n"),
            "{text}"
        );
        let v = profile_values(&text, "default");
        assert!(
            !v.0.is_empty() && !v.1.is_empty() && !v.2.is_empty(),
            "never partial: {text}"
        );
        seen.insert(v.0.clone());
        (seen.len() >= 3).then_some(v)
    });
    assert_ne!(later.0, first.0);
    let (status, stderr) = d.stop();
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[test]
fn update_keeps_the_last_good_credentials_through_faults_and_recovers() {
    let ep = faulty_endpoint("503");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    let env = [("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap())];
    let d = Daemon::start(
        &update_args(
            &ep,
            &[
                "--refresh-before",
                "897s",
                "--timeout",
                "1",
                "--max-attempts",
                "3",
            ],
        ),
        &env,
        0,
    )
    .unwrap();
    let read = || std::fs::read_to_string(&file).unwrap_or_default();
    let first = wait_for("the first write", || {
        let v = profile_values(&read(), "default");
        (!v.0.is_empty()).then_some(v)
    });
    wait_for("the faults to be met", || {
        (log_entries(&ep).len() >= 4).then_some(())
    });
    assert_eq!(
        profile_values(&read(), "default"),
        first,
        "the file keeps the last good credentials"
    );
    let recovered = wait_for("recovery", || {
        let v = profile_values(&read(), "default");
        (v.0 != first.0).then_some(v)
    });
    assert!(!recovered.1.is_empty() && !recovered.2.is_empty());
    assert_fault_plan_met(&ep, "503");
    let (status, stderr) = d.stop();
    assert!(status.success());
    assert!(
        stderr.contains("iamra: warning: refresh failed (attempt 1); the credentials valid until "),
        "{stderr}"
    );
}

#[test]
fn update_uses_the_rotated_certificate_at_the_next_refresh() {
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let rotation = Rotation::new();
    let file = rotation.dir().join("credentials");
    let mut args = vec![
        "update".to_string(),
        "--refresh-before".into(),
        "897s".into(),
    ];
    args.extend(credential_flags(
        &ep,
        &rotation.cert(),
        Some(&rotation.key()),
    ));
    let d = Daemon::start(
        &args,
        &[("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap())],
        0,
    )
    .unwrap();
    let (_, switch) = rotation.rotate(&ep);
    let written = wait_for(
        "the file to hold credentials from the new certificate",
        || {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            (serials(&ep).len() > switch && !profile_values(&text, "default").0.is_empty())
                .then_some(text)
        },
    );
    assert!(written.contains("aws_session_token = "));
    let (status, _) = d.stop();
    assert!(status.success());
}

#[test]
fn update_never_logs_credentials_even_at_trace_level() {
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    let env = [
        ("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap()),
        ("IAMRA_LOG", "trace"),
    ];
    let out = iamra(&update_args(&ep, &["--once"]), &env);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let (_, sk, tok, _) = profile_values(&std::fs::read_to_string(&file).unwrap(), "default");
    assert!(stderr.contains("iamra: trace: "), "trace logging is on");
    assert!(
        stderr.contains("iamra: info: wrote credentials ASIA"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&sk) && !stderr.contains(&tok),
        "a secret reached stderr"
    );
    // And through refreshes.
    let d = Daemon::start(&update_args(&ep, &["--refresh-before", "897s"]), &env, 0).unwrap();
    let mut secrets = Vec::new();
    wait_for("two refreshes", || {
        let (_, sk, tok, _) = profile_values(&std::fs::read_to_string(&file).unwrap(), "default");
        if !secrets.contains(&sk) {
            secrets.push(sk);
            secrets.push(tok);
        }
        (secrets.len() >= 6).then_some(())
    });
    let (status, stderr) = d.stop();
    assert!(status.success());
    for s in &secrets {
        assert!(!stderr.contains(s.as_str()), "a secret reached stderr");
    }
}

// ---------------------------------------------------------------------------------
// botocore

#[test]
fn boto3_reads_the_credentials_file_that_update_wrote() {
    let Some(python) = boto3_python() else { return };
    let ep = Endpoint::start_with(&["--max-duration", "900"]);
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("credentials");
    std::fs::write(&file, "# a comment botocore must skip\r\n[other]\r\naws_access_key_id = AKIAOTHER\r\naws_secret_access_key = other\r\n").unwrap();
    let out = iamra(
        &update_args(&ep, &["--once", "--profile", "ra"]),
        &[("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ak, sk, tok, _) = profile_values(
        &std::fs::read_to_string(&file)
            .unwrap()
            .replace("\r\n", "\n"),
        "ra",
    );
    let got = boto3_credentials(
        &python,
        home.path(),
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap()),
            ("AWS_PROFILE", "ra"),
        ],
    );
    assert_eq!(got["method"], "shared-credentials-file");
    assert_eq!(
        (
            got["access_key"].as_str(),
            got["secret_key"].as_str(),
            got["token"].as_str()
        ),
        (Some(ak.as_str()), Some(sk.as_str()), Some(tok.as_str()))
    );
    assert_eq!(log_entries(&ep).len(), 1);
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[test]
fn boto3_runs_our_credential_process() {
    let Some(python) = boto3_python() else { return };
    let ep = Endpoint::start();
    let home = tempfile::tempdir().unwrap();
    // The line a user writes into ~/.aws/config, through a wrapper that also keeps a
    // copy of what iamra printed.
    let printed: PathBuf = home.path().join("printed.json");
    let mut command = vec![iamra_path().to_string(), "credential-process".into()];
    // An hour: botocore refreshes process credentials that have less than 15 minutes left.
    command.extend(
        credential_flags(&ep, &td("ec-p256/combined.pem"), None)
            .into_iter()
            .map(|f| if f == "900" { "3600".to_string() } else { f }),
    );
    let wrapper = home.path().join("iamra-credential-process");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n{} > {p} || exit 1\ncat {p}\n",
            command
                .iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" "),
            p = shell_quote(printed.to_str().unwrap())
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o700)).unwrap();
    let config = home.path().join("config");
    std::fs::write(
        &config,
        format!("[profile ra]\ncredential_process = {}\n", wrapper.display()),
    )
    .unwrap();
    let got = boto3_credentials(
        &python,
        home.path(),
        &[
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
            ("AWS_PROFILE", "ra"),
        ],
    );
    assert_eq!(got["method"], "custom-process");
    let ours: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&printed).unwrap()).unwrap();
    assert_eq!(got["access_key"], ours["AccessKeyId"]);
    assert_eq!(got["secret_key"], ours["SecretAccessKey"]);
    assert_eq!(got["token"], ours["SessionToken"]);
    assert_eq!(log_entries(&ep).len(), 1, "botocore ran it once");
    assert_eq!(log_entries(&ep)[0]["status"], 201);
}
