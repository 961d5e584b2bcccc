//! Tokens that match a URI, sessions, and logging in with a PIN from the URI
//! or the password source (never retried after a wrong PIN).

#[allow(clippy::wildcard_imports, reason = "one module split into files")]
use super::*;

/// A token that matched a URI.
#[derive(Clone)]
pub(super) struct Token {
    pub(super) slot: Slot,
    pub(super) info: TokenInfo,
    /// model, manufacturer, serial and token label.
    pub(super) uri: Pkcs11Uri,
}

impl Token {
    pub(super) fn uri_string(&self) -> String {
        self.uri.to_string()
    }

    /// The URI of an object on this token.
    pub(super) fn object_uri(&self, id: &[u8], label: &str, t: ObjectType) -> String {
        let mut u = self.uri.clone();
        if !id.is_empty() {
            u.id = Some(id.to_vec());
        }
        if !label.is_empty() {
            u.object = Some(label.to_string());
        }
        u.object_type = Some(t);
        u.to_string()
    }
}

pub(super) fn module_err(module: &Module, function: &'static str, e: &CkError) -> Pkcs11Error {
    Pkcs11Error::Module {
        module: module.name.clone(),
        function,
        rv: rv_name(e),
    }
}

/// Every initialised token the URI's token, slot and library attributes select.
pub(super) fn matching_tokens(
    module: &Module,
    uri: &Pkcs11Uri,
) -> Result<(Vec<Token>, Vec<String>), Pkcs11Error> {
    let ctx = &module.ctx;
    if uri.library_manufacturer.is_some()
        || uri.library_description.is_some()
        || uri.library_version.is_some()
    {
        let info = ctx
            .get_library_info()
            .map_err(|e| module_err(module, "C_GetInfo", &e))?;
        let version = info.library_version();
        let ok = uri
            .library_manufacturer
            .as_deref()
            .is_none_or(|m| m == info.manufacturer_id())
            && uri
                .library_description
                .as_deref()
                .is_none_or(|d| d == info.library_description())
            && uri
                .library_version
                .is_none_or(|(maj, min)| maj == version.major() && min == version.minor());
        if !ok {
            return Ok((Vec::new(), Vec::new()));
        }
    }
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| module_err(module, "C_GetSlotList", &e))?;
    let mut tokens = Vec::new();
    let mut present = Vec::new();
    for slot in slots {
        let Ok(info) = ctx.get_token_info(slot) else {
            continue;
        };
        if !info.token_initialized() {
            continue;
        }
        let token_uri = Pkcs11Uri {
            model: Some(info.model().to_string()),
            manufacturer: Some(info.manufacturer_id().to_string()),
            serial: Some(info.serial_number().to_string()),
            token: Some(info.label().to_string()),
            ..Pkcs11Uri::default()
        };
        present.push(token_uri.to_string());
        let text_ok = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        let mut ok = text_ok(&uri.token, info.label())
            && text_ok(&uri.manufacturer, info.manufacturer_id())
            && text_ok(&uri.serial, info.serial_number())
            && text_ok(&uri.model, info.model())
            && uri.slot_id.is_none_or(|id| id == slot.id());
        if ok && (uri.slot_description.is_some() || uri.slot_manufacturer.is_some()) {
            match ctx.get_slot_info(slot) {
                Ok(si) => {
                    ok = text_ok(&uri.slot_description, si.slot_description())
                        && text_ok(&uri.slot_manufacturer, si.manufacturer_id());
                }
                Err(_) => ok = false,
            }
        }
        if ok {
            tokens.push(Token {
                slot,
                info,
                uri: token_uri,
            });
        }
    }
    present.sort();
    Ok((tokens, present))
}

pub(super) fn one_token(module: &Module, uri: &Pkcs11Uri) -> Result<Token, Pkcs11Error> {
    let (mut tokens, present) = matching_tokens(module, uri)?;
    match tokens.len() {
        0 => Err(Pkcs11Error::NoToken {
            uri: uri.to_string(),
            present,
        }),
        1 => Ok(tokens.remove(0)),
        _ => Err(Pkcs11Error::SeveralTokens {
            uri: uri.to_string(),
            candidates: sorted(tokens.iter().map(Token::uri_string)),
        }),
    }
}

pub(super) fn sorted(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = items.collect();
    v.sort();
    v
}

/// An open session on a token, logged in or not.
pub(super) struct TokenSession {
    pub(super) token: Token,
    pub(super) session: Session,
    pub(super) logged_in: bool,
}

pub(super) fn open_session(module: &Module, token: &Token) -> Result<TokenSession, Pkcs11Error> {
    let session = module
        .ctx
        .open_ro_session(token.slot)
        .map_err(|e| Pkcs11Error::Token {
            uri: token.uri_string(),
            function: "C_OpenSession",
            rv: rv_name(&e),
        })?;
    Ok(TokenSession {
        token: token.clone(),
        session,
        logged_in: false,
    })
}

// ---------------------------------------------------------------------------------
// PINs

/// Where PINs come from: the URIs (key URI first), then the password source.
pub(super) struct PinSources<'a> {
    pub(super) uris: Vec<&'a Pkcs11Uri>,
    pub(super) passwords: &'a dyn PasswordSource,
}

impl PinSources<'_> {
    /// The user PIN for `token`, or `None` when no source has one.
    pub(super) fn user_pin(&self, token: &Token) -> Result<Option<SecretString>, Pkcs11Error> {
        for u in &self.uris {
            if let Some(pin) = &u.pin_value {
                return Ok(Some(pin.clone()));
            }
            let path = u.pin_source_path().map_err(|source| Pkcs11Error::BadUri {
                field: None,
                source,
            })?;
            if let Some(path) = path {
                return read_pin_file(&path, token).map(Some);
            }
        }
        let label = token.uri_string();
        Ok(self
            .passwords
            .password(SecretKind::Pkcs11Pin, Path::new(&label))?)
    }
}

pub(super) fn read_pin_file(path: &Path, token: &Token) -> Result<SecretString, Pkcs11Error> {
    let data = crate::input::read_file("pin-source file", path).map_err(|source| {
        Pkcs11Error::PinSource {
            path: path.to_path_buf(),
            source,
        }
    })?;
    let text = std::str::from_utf8(&data).map_err(|_| Pkcs11Error::BadPin {
        token: token.uri_string(),
        reason: "from pin-source is not UTF-8",
    })?;
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text);
    Ok(SecretString::from(text))
}

/// The retry-counter state a token reports after a failed login.
pub(super) fn pin_state(module: &Module, token: &Token) -> String {
    let Ok(info) = module.ctx.get_token_info(token.slot) else {
        return "nothing about the remaining tries".into();
    };
    if info.user_pin_locked() {
        "CKF_USER_PIN_LOCKED (the PIN is now locked)".into()
    } else if info.user_pin_final_try() {
        "CKF_USER_PIN_FINAL_TRY (one try left before the PIN locks)".into()
    } else if info.user_pin_count_low() {
        "CKF_USER_PIN_COUNT_LOW (few tries left)".into()
    } else {
        "no retry-counter flag".into()
    }
}

/// Reads the token's PIN retry flags afresh just before `C_Login`: refuses when
/// the PIN is locked or one more failure would lock it (`CKF_USER_PIN_FINAL_TRY`),
/// and warns when the token says few tries are left.
pub(super) fn check_pin_counter(module: &Module, token: &Token) -> Result<(), Pkcs11Error> {
    let uri = token.uri_string();
    let info = module
        .ctx
        .get_token_info(token.slot)
        .map_err(|e| Pkcs11Error::Token {
            uri: uri.clone(),
            function: "C_GetTokenInfo",
            rv: rv_name(&e),
        })?;
    if info.user_pin_locked() {
        return Err(Pkcs11Error::PinLocked { token: uri });
    }
    if info.user_pin_final_try() {
        return Err(Pkcs11Error::PinFinalTry { token: uri });
    }
    if info.user_pin_count_low() {
        tracing::warn!(
            "token {uri} reports CKF_USER_PIN_COUNT_LOW: an earlier PIN was wrong and few tries are left before the PIN locks"
        );
    }
    Ok(())
}

/// Logs `ts` in as the user when the token needs it. Returns the PIN used.
pub(super) fn login(
    module: &Module,
    ts: &mut TokenSession,
    pins: &PinSources<'_>,
) -> Result<Option<SecretString>, Pkcs11Error> {
    if ts.logged_in || !ts.token.info.login_required() {
        return Ok(None);
    }
    let token = ts.token.uri_string();
    let pin = pins.user_pin(&ts.token)?;
    if pin.is_none() && !ts.token.info.protected_authentication_path() {
        return Err(Pkcs11Error::PinRequired { token });
    }
    login_with(module, ts, pin.as_ref())?;
    Ok(pin)
}

pub(super) fn login_with(
    module: &Module,
    ts: &mut TokenSession,
    pin: Option<&SecretString>,
) -> Result<(), Pkcs11Error> {
    let token = ts.token.uri_string();
    if pin.is_some_and(|p| p.expose_secret().is_empty()) {
        return Err(Pkcs11Error::BadPin {
            token,
            reason: "is empty",
        });
    }
    check_pin_counter(module, &ts.token)?;
    match ts.session.login(UserType::User, pin) {
        Ok(()) => {}
        Err(e) if is_rv(&e, RvError::UserAlreadyLoggedIn) => {}
        Err(e) if is_rv(&e, RvError::PinIncorrect) => {
            return Err(Pkcs11Error::WrongPin {
                state: pin_state(module, &ts.token),
                token,
            });
        }
        Err(e) if is_rv(&e, RvError::PinLocked) => return Err(Pkcs11Error::PinLocked { token }),
        Err(e) if is_rv(&e, RvError::PinLenRange) => {
            return Err(Pkcs11Error::BadPin {
                token,
                reason: "has a length the token does not accept",
            });
        }
        Err(e) => {
            return Err(Pkcs11Error::Token {
                uri: token,
                function: "C_Login",
                rv: rv_name(&e),
            });
        }
    }
    tracing::debug!(token = %ts.token.uri_string(), "logged in");
    ts.logged_in = true;
    Ok(())
}
