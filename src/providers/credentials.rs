//! Where the server's credentials may go. A suite posted to the API is
//! written by someone other than the operator: it must not make the server
//! send a key to a host of its choosing, nor read an environment variable
//! that is not a provider key (`API_TOKEN`, a database password), and no
//! suite may carry a credential written into it (it would be stored and
//! returned in plain text).
//!
//! [`Credentials::Local`] is the operator's own suite (`promptgauge run`,
//! `OPTIMIZE_PROVIDER`): promptfoo's rules. [`Credentials::Guarded`] is the
//! server's: a key goes only to its family's own API host, loopback, the
//! host of the operator's base URL variable and `PROVIDER_ALLOWED_HOSTS`;
//! it is read only from the providers' key variables and
//! `PROVIDER_KEY_VARS`.

use std::sync::Arc;

use serde_json::{Map, Value};

/// The variables providers read keys from (promptfoo's names, for the
/// families promptgauge speaks or will).
pub const KEY_VARS: &[&str] = &[
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "AZURE_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "VERTEX_API_KEY",
    "MISTRAL_API_KEY",
    "OPENROUTER_API_KEY",
    "XAI_API_KEY",
    "PERPLEXITY_API_KEY",
    "DEEPSEEK_API_KEY",
    "GROQ_API_KEY",
    "TOGETHER_API_KEY",
    "FIREWORKS_API_KEY",
    "REPLICATE_API_TOKEN",
    "REPLICATE_API_KEY",
    "COHERE_API_KEY",
    "CEREBRAS_API_KEY",
    "HF_API_TOKEN",
];

/// Config keys that hold a credential, compared without case, `_` or `-`
/// (`apiKey`, `api_key`, `API-KEY`, `headers.Authorization`, ...).
const SECRET_KEYS: &[&str] = &[
    "apikey",
    "xapikey",
    "apitoken",
    "accesstoken",
    "authtoken",
    "bearertoken",
    "token",
    "secret",
    "secretkey",
    "clientsecret",
    "secretaccesskey",
    "sessiontoken",
    "privatekey",
    "password",
    "authorization",
    "proxyauthorization",
    "cookie",
    "xgoogapikey",
];

/// Who wrote a suite, and so where the server's credentials may go.
#[derive(Debug, Clone, Default)]
pub enum Credentials {
    /// The operator's own suite: keys go where it says.
    #[default]
    Local,
    /// A suite posted to the server: keys go only to allowed hosts.
    Guarded(Arc<Guard>),
}

/// The operator's additions to the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Guard {
    /// `PROVIDER_ALLOWED_HOSTS`: more hosts (`host` or `host:port`) a key
    /// may be sent to.
    pub hosts: Vec<String>,
    /// `PROVIDER_KEY_VARS`: more variables a key may be read from.
    pub key_vars: Vec<String>,
}

impl Credentials {
    /// The server's policy with the operator's additions.
    pub fn guarded(guard: Guard) -> Self {
        Self::Guarded(Arc::new(guard))
    }

    /// May a key from `key_env` be sent to `url`? `home` is the family's
    /// own API host, `operator_base` the base URL variable the operator set
    /// (its host is allowed too).
    pub fn check_host(
        &self,
        url: &reqwest::Url,
        home: &str,
        operator_base: Option<&str>,
        key_env: &str,
    ) -> Result<(), String> {
        let Self::Guarded(guard) = self else {
            return Ok(());
        };
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let host_port = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let operator = operator_base
            .and_then(|b| reqwest::Url::parse(b).ok())
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
        let allowed = is_loopback(&host)
            || host == home
            || operator.as_deref() == Some(host.as_str())
            || guard
                .hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&host) || h.eq_ignore_ascii_case(&host_port));
        if allowed {
            Ok(())
        } else {
            Err(format!(
                "config.apiBaseUrl: this server sends {key_env} only to {home}, loopback and the hosts in PROVIDER_ALLOWED_HOSTS, not to {host_port} (set apiKeyRequired: false for a server that needs no key)"
            ))
        }
    }

    /// May a key be read from the variable `name`?
    pub fn check_key_var(&self, name: &str) -> Result<(), String> {
        let Self::Guarded(guard) = self else {
            return Ok(());
        };
        if KEY_VARS.contains(&name) || guard.key_vars.iter().any(|v| v == name) {
            Ok(())
        } else {
            Err(format!(
                "config.apiKeyEnv: this server reads keys only from the providers' variables ({}) and those in PROVIDER_KEY_VARS, not from {name:?}",
                KEY_VARS.join(", ")
            ))
        }
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Every credential written into a provider's `config` (at any depth, so
/// `headers.Authorization` too), as a refusal naming its path. Empty and
/// null values are not credentials.
pub fn inline_credentials(config: &Map<String, Value>) -> Vec<String> {
    let mut found = Vec::new();
    walk(config, "config", &mut found);
    found
        .into_iter()
        .map(|path| {
            format!(
                "{path} is refused: a credential is never stored with a suite; put it in an environment variable the provider reads (for OpenAI-compatible providers, name it in `apiKeyEnv`)"
            )
        })
        .collect()
}

fn walk(map: &Map<String, Value>, at: &str, found: &mut Vec<String>) {
    for (key, value) in map {
        let path = format!("{at}.{key}");
        let normalized: String = key
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let empty = matches!(value, Value::Null) || value.as_str().is_some_and(str::is_empty);
        if SECRET_KEYS.contains(&normalized.as_str()) && !empty {
            found.push(path);
        } else if let Value::Object(inner) = value {
            walk(inner, &path, found);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).unwrap()
    }

    #[test]
    fn a_guarded_key_goes_home_to_loopback_and_to_allowed_hosts_only() {
        let guarded = Credentials::guarded(Guard {
            hosts: vec!["llm.internal:8443".into(), "gateway.corp".into()],
            key_vars: vec![],
        });
        let home = "api.openai.com";
        let check = |u: &str, operator: Option<&str>| {
            guarded.check_host(&url(u), home, operator, "OPENAI_API_KEY")
        };
        for ok in [
            "https://api.openai.com/v1",
            "http://127.0.0.1:9999/v1",
            "http://localhost/v1",
            "http://[::1]:8080/v1",
            "https://llm.internal:8443/v1",
            "https://gateway.corp/v1",
            "https://GATEWAY.corp:7000/v1",
        ] {
            assert_eq!(check(ok, None), Ok(()), "{ok}");
        }
        for refused in [
            "https://attacker.example/v1",
            "https://api.openai.com.attacker.example/v1",
            "https://llm.internal:9999/v1",
            "http://10.0.0.5/v1",
            "http://169.254.169.254/latest",
        ] {
            let e = check(refused, None).unwrap_err();
            assert!(e.contains("PROVIDER_ALLOWED_HOSTS"), "{refused}: {e}");
        }
        // The operator's own base URL variable names an allowed host.
        assert_eq!(
            check("https://proxy.corp/v1", Some("https://proxy.corp/openai")),
            Ok(())
        );
        assert_eq!(
            Credentials::Local.check_host(&url("https://x.example/"), home, None, "K"),
            Ok(())
        );
    }

    #[test]
    fn only_provider_key_variables_are_read() {
        let guarded = Credentials::guarded(Guard {
            hosts: vec![],
            key_vars: vec!["TEAM_OPENAI_KEY".into()],
        });
        assert_eq!(guarded.check_key_var("ANTHROPIC_API_KEY"), Ok(()));
        assert_eq!(guarded.check_key_var("TEAM_OPENAI_KEY"), Ok(()));
        for refused in ["API_TOKEN", "DATABASE_PASSWORD", "HOME", "openai_api_key"] {
            assert!(guarded.check_key_var(refused).is_err(), "{refused}");
        }
        assert_eq!(Credentials::Local.check_key_var("API_TOKEN"), Ok(()));
    }

    #[test]
    fn every_spelling_of_a_credential_is_found_at_any_depth() {
        let config = json!({
            "apiKey": "sk-1", "api_key": "sk-2", "API-KEY": "sk-3", "temperature": 0,
            "headers": {"Authorization": "Bearer x", "X-Api-Key": "k", "Accept": "application/json"},
            "auth": {"password": "hunter2"},
            "apiKeyEnv": "OPENAI_API_KEY", "token": "", "secret": null,
        });
        let found = inline_credentials(config.as_object().unwrap());
        let paths: Vec<&str> = found.iter().map(|f| f.split(' ').next().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "config.apiKey",
                "config.api_key",
                "config.API-KEY",
                "config.headers.Authorization",
                "config.headers.X-Api-Key",
                "config.auth.password"
            ]
        );
        assert!(
            found
                .iter()
                .all(|f| !f.contains("sk-") && !f.contains("hunter2"))
        );
    }
}
