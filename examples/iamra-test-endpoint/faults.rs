//! Injected faults (`--fault SPEC`, repeatable).
//!
//! The positional specs apply to successive `/sessions` requests: the first
//! `--fault` to request 1, the second to request 2, and so on; `N*SPEC` stands
//! for N copies of SPEC. Once they are used up, the last `always:SPEC` given
//! applies (to every later request; `ok` when none was given).
//!
//! | SPEC | answer |
//! |------|--------|
//! | `ok` | normal verification |
//! | `delay:MS` | sleep MS milliseconds, then normal verification |
//! | `500` | 500 `InternalServerException` `{"message":"Internal server error"}` |
//! | `503` | 503 `ServiceUnavailableException` `{"message":"Service unavailable"}` |
//! | `429` | 429 `ThrottlingException` `{"message":"Rate exceeded"}`, `Retry-After: 1` |
//! | `malformed` | 201, `Content-Type: application/json`, a body that is not JSON |
//! | `truncated` | 201 whose `Content-Length` is the full body's, half the body sent, then the connection is closed |
//! | `drop` | the request is read, then the TCP connection is closed with no response |
//! | `missing-field` | 201 whose `credentials` object has no `sessionToken` |
//! | `empty-set` | 201 with `"credentialSet":[]` |
//! | `wrong-type` | 201 whose `expiration` is a number (Unix seconds) |
//! | `huge` | 201, a well-formed response padded to about 10 MiB |
//! | `access-denied` | 403 `AccessDeniedException` `{"message":"Untrusted Signing Certificate"}` |
//! | `far-future` | 201 whose `expiration` is `9999-12-31T23:59:59-01:00` (past year 9999 in UTC) |
//! | `expired` | 201 whose `expiration` is an hour ago |
//! | `stall` | 201 whose `Content-Length` is the full body's, half the body sent, then nothing (the connection stays open) |
//! | `hang` | the request is read, then nothing is ever sent (the connection stays open) |
//!
//! Every fault but `ok` and `delay:` is answered without verifying the request.

/// Largest N in `N*SPEC`.
const MAX_REPEAT: u64 = 1_000_000;
/// Largest `delay:MS`.
const MAX_DELAY_MS: u64 = 600_000;

/// One fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Normal behaviour.
    Ok,
    /// Sleep this many milliseconds, then behave normally.
    Delay(u64),
    /// 500 InternalServerException.
    Internal,
    /// 503 ServiceUnavailableException.
    Unavailable,
    /// 429 ThrottlingException with `Retry-After: 1`.
    Throttle,
    /// 201 with a non-JSON body.
    Malformed,
    /// 201 with a Content-Length larger than the body sent, then close.
    Truncated,
    /// Close the connection without a response.
    Drop,
    /// 201 whose credentials lack `sessionToken`.
    MissingField,
    /// 201 with an empty `credentialSet`.
    EmptySet,
    /// 201 whose `expiration` is a number.
    WrongType,
    /// 201 with a ~10 MiB body.
    Huge,
    /// 403 AccessDeniedException "Untrusted Signing Certificate".
    AccessDenied,
    /// 201 whose expiration is past year 9999 in UTC.
    FarFuture,
    /// 201 whose expiration is an hour ago.
    Expired,
    /// 201 headers and half the body, then silence.
    Stall,
    /// No answer at all, the connection kept open.
    Hang,
}

impl Fault {
    /// Parses one SPEC (without `N*` or `always:`).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let fault = match spec {
            "ok" => Fault::Ok,
            "500" => Fault::Internal,
            "503" => Fault::Unavailable,
            "429" => Fault::Throttle,
            "malformed" => Fault::Malformed,
            "truncated" => Fault::Truncated,
            "drop" => Fault::Drop,
            "missing-field" => Fault::MissingField,
            "empty-set" => Fault::EmptySet,
            "wrong-type" => Fault::WrongType,
            "huge" => Fault::Huge,
            "access-denied" => Fault::AccessDenied,
            "far-future" => Fault::FarFuture,
            "expired" => Fault::Expired,
            "stall" => Fault::Stall,
            "hang" => Fault::Hang,
            other => {
                let ms = other
                    .strip_prefix("delay:")
                    .ok_or_else(|| format!("unknown fault {other:?}"))?;
                let ms: u64 = ms
                    .parse()
                    .map_err(|_| format!("invalid delay in fault {other:?}"))?;
                if ms > MAX_DELAY_MS {
                    return Err(format!(
                        "delay in fault {other:?} exceeds {MAX_DELAY_MS} ms"
                    ));
                }
                Fault::Delay(ms)
            }
        };
        Ok(fault)
    }

    /// The spec text, as logged (`None` for `ok`).
    pub fn label(self) -> Option<String> {
        let s = match self {
            Fault::Ok => return None,
            Fault::Delay(ms) => return Some(format!("delay:{ms}")),
            Fault::Internal => "500",
            Fault::Unavailable => "503",
            Fault::Throttle => "429",
            Fault::Malformed => "malformed",
            Fault::Truncated => "truncated",
            Fault::Drop => "drop",
            Fault::MissingField => "missing-field",
            Fault::EmptySet => "empty-set",
            Fault::WrongType => "wrong-type",
            Fault::Huge => "huge",
            Fault::AccessDenied => "access-denied",
            Fault::FarFuture => "far-future",
            Fault::Expired => "expired",
            Fault::Stall => "stall",
            Fault::Hang => "hang",
        };
        Some(s.to_string())
    }

    /// Whether the request is still verified under this fault.
    pub fn verifies(self) -> bool {
        matches!(self, Fault::Ok | Fault::Delay(_))
    }
}

/// The faults to apply, request by request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Runs of `(count, fault)` for requests 1, 2, …
    runs: Vec<(u64, Fault)>,
    /// Fault after the runs are used up.
    always: Option<Fault>,
}

impl FaultPlan {
    /// Parses the `--fault` values in order.
    pub fn parse(specs: &[String]) -> Result<Self, String> {
        let mut plan = FaultPlan::default();
        for spec in specs {
            let spec = spec.trim();
            if let Some(rest) = spec.strip_prefix("always:") {
                plan.always = Some(Fault::parse(rest)?);
                continue;
            }
            let (count, rest) = match spec.split_once('*') {
                Some((n, rest)) => {
                    let n: u64 = n
                        .parse()
                        .map_err(|_| format!("invalid repeat count in fault {spec:?}"))?;
                    if n == 0 || n > MAX_REPEAT {
                        return Err(format!(
                            "repeat count in fault {spec:?} must be 1 to {MAX_REPEAT}"
                        ));
                    }
                    (n, rest)
                }
                None => (1, spec),
            };
            plan.runs.push((count, Fault::parse(rest)?));
        }
        Ok(plan)
    }

    /// The fault for the `n`-th request (1-based).
    pub fn for_request(&self, n: u64) -> Fault {
        let mut first = 1u64;
        for &(count, fault) in &self.runs {
            if n >= first && n < first.saturating_add(count) {
                return fault;
            }
            first = first.saturating_add(count);
        }
        self.always.unwrap_or(Fault::Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(specs: &[&str]) -> FaultPlan {
        let specs: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
        FaultPlan::parse(&specs).expect("plan")
    }

    #[test]
    fn faults_apply_in_order_then_normal() {
        let p = plan(&["500", "2*429", "delay:25", "drop"]);
        assert_eq!(p.for_request(1), Fault::Internal);
        assert_eq!(p.for_request(2), Fault::Throttle);
        assert_eq!(p.for_request(3), Fault::Throttle);
        assert_eq!(p.for_request(4), Fault::Delay(25));
        assert_eq!(p.for_request(5), Fault::Drop);
        assert_eq!(p.for_request(6), Fault::Ok);
        assert_eq!(p.for_request(1000), Fault::Ok);
    }

    #[test]
    fn always_applies_after_the_list() {
        let p = plan(&["always:503"]);
        assert_eq!(p.for_request(1), Fault::Unavailable);
        assert_eq!(p.for_request(99), Fault::Unavailable);
        let p = plan(&["ok", "always:huge"]);
        assert_eq!(p.for_request(1), Fault::Ok);
        assert_eq!(p.for_request(2), Fault::Huge);
    }

    #[test]
    fn every_spec_parses_and_round_trips() {
        for spec in [
            "500",
            "503",
            "429",
            "malformed",
            "truncated",
            "drop",
            "delay:100",
            "missing-field",
            "empty-set",
            "wrong-type",
            "huge",
            "access-denied",
            "far-future",
            "expired",
            "stall",
            "hang",
        ] {
            let f = Fault::parse(spec).expect(spec);
            assert_eq!(f.label().as_deref(), Some(spec));
            assert_eq!(f.verifies(), spec.starts_with("delay:"));
        }
        assert_eq!(Fault::parse("ok"), Ok(Fault::Ok));
        assert_eq!(Fault::Ok.label(), None);
    }

    #[test]
    fn bad_specs_are_refused() {
        for bad in [
            "",
            "404",
            "delay:",
            "delay:x",
            "0*500",
            "x*500",
            "3*",
            "always:nope",
        ] {
            assert!(FaultPlan::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
