//! The process-wide TLS setup every HTTP client here needs.

use std::sync::Once;

/// Installs ring as rustls' process-wide crypto provider, which every
/// `reqwest::Client` here needs (we build reqwest without its own). Idempotent.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Fails only if another provider was installed first; that one serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
