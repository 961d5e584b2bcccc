//! Loading PKCS#11 modules: `--pkcs11-lib`, the URI's module attributes, then
//! p11-kit-proxy; one initialised instance per module and process.

#[allow(clippy::wildcard_imports, reason = "one module split into files")]
use super::*;

/// A loaded and initialised module. `C_Finalize` runs when the last user drops it.
pub(super) struct Module {
    pub(super) ctx: Pkcs11,
    pub(super) name: String,
    pub(super) finalize: bool,
}

impl Drop for Module {
    fn drop(&mut self) {
        if self.finalize {
            let _ = self.ctx.clone().finalize();
        }
    }
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module").field("name", &self.name).finish()
    }
}

/// Modules in use in this process: a module is initialised once and shared, so
/// that two keys on one module do not finalise each other's sessions.
pub(super) static MODULES: Mutex<Vec<(String, Weak<Module>)>> = Mutex::new(Vec::new());

pub(super) fn module_candidates(opts: &Pkcs11Options, uris: &[&Pkcs11Uri]) -> Vec<PathBuf> {
    if let Some(m) = &opts.module {
        return vec![m.clone()];
    }
    if let Some(u) = uris.iter().find(|u| u.names_module()) {
        let names = |name: &str| -> Vec<String> {
            if name.contains(".so") {
                vec![name.to_string()]
            } else {
                vec![format!("lib{name}.so"), format!("{name}.so")]
            }
        };
        return match (&u.module_path, &u.module_name) {
            (Some(p), Some(n)) if p.is_dir() => names(n).iter().map(|f| p.join(f)).collect(),
            (Some(p), _) => vec![p.clone()],
            (None, Some(n)) => {
                let mut v: Vec<PathBuf> = names(n).into_iter().map(PathBuf::from).collect();
                for dir in MODULE_DIRS {
                    v.extend(names(n).iter().map(|f| Path::new(dir).join(f)));
                }
                v
            }
            (None, None) => Vec::new(),
        };
    }
    DEFAULT_MODULES.iter().map(PathBuf::from).collect()
}

pub(super) fn open_module(path: &Path) -> Result<Arc<Module>, String> {
    let name = path.display().to_string();
    let mut registry = MODULES.lock().unwrap_or_else(|e| e.into_inner());
    registry.retain(|(_, w)| w.strong_count() > 0);
    if let Some(m) = registry
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, w)| w.upgrade())
    {
        return Ok(m);
    }
    if path.is_dir() {
        return Err("a directory".into());
    }
    let ctx = Pkcs11::new(path).map_err(|e| match &e {
        CkError::LibraryLoading(inner) => {
            let text = inner.to_string();
            // dlerror() starts with the path; do not repeat it.
            text.strip_prefix(&format!("{name}: "))
                .unwrap_or(&text)
                .to_string()
        }
        CkError::MissingSymbol(s) => format!("not a PKCS#11 module: no {s}"),
        other => rv_name(other),
    })?;
    let finalize = match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => true,
        // Initialised by someone else in this process (a library user): share it.
        Err(e) if is_rv(&e, RvError::CryptokiAlreadyInitialized) => false,
        Err(e) => return Err(format!("C_Initialize failed: {}", rv_name(&e))),
    };
    tracing::debug!(module = %name, by_us = finalize, "PKCS#11 module initialised");
    let module = Arc::new(Module {
        ctx,
        name: name.clone(),
        finalize,
    });
    registry.push((name, Arc::downgrade(&module)));
    Ok(module)
}

pub(super) fn load_module(
    opts: &Pkcs11Options,
    uris: &[&Pkcs11Uri],
) -> Result<Arc<Module>, Pkcs11Error> {
    let mut tried = Vec::new();
    for candidate in module_candidates(opts, uris) {
        match open_module(&candidate) {
            Ok(m) => {
                tracing::debug!(module = %m.name, "PKCS#11 module loaded");
                return Ok(m);
            }
            Err(reason) => tried.push(format!("{} ({reason})", candidate.display())),
        }
    }
    if tried.is_empty() {
        tried.push("nothing: module-path names no file".into());
    }
    Err(Pkcs11Error::ModuleNotLoadable { tried })
}
