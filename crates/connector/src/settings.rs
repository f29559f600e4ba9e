//! Platform settings and credentials: the typed description the console renders, the secret
//! wrapper that keeps credentials out of logs, and the checks a connector's settings pass
//! before it is built.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use thiserror::Error;

/// The fields of one platform's settings and credentials, in display order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsSchema {
    pub fields: Vec<SettingField>,
}

impl SettingsSchema {
    pub fn new(fields: Vec<SettingField>) -> Self {
        Self { fields }
    }

    pub fn fields_in(&self, section: Section) -> impl Iterator<Item = &SettingField> {
        self.fields.iter().filter(move |f| f.section == section)
    }

    /// Rejects keys the schema does not name and required keys that are missing, in either
    /// section. A misspelt key must fail loudly: silently ignoring `shop_domian` would run the
    /// connection against defaults.
    pub fn check(
        &self,
        settings: &serde_json::Value,
        credentials: &Credentials,
    ) -> Result<(), SettingsError> {
        let settings_keys = object_keys(settings, Section::Settings)?;
        self.check_section(Section::Settings, &settings_keys)?;
        let credential_keys: BTreeSet<&str> = credentials.keys().collect();
        self.check_section(Section::Credentials, &credential_keys)
    }

    fn check_section(
        &self,
        section: Section,
        present: &BTreeSet<&str>,
    ) -> Result<(), SettingsError> {
        let known: BTreeSet<&str> = self.fields_in(section).map(|f| f.key.as_str()).collect();
        if let Some(unknown) = present.iter().find(|k| !known.contains(*k)) {
            return Err(SettingsError::UnknownField {
                section,
                field: (*unknown).to_owned(),
                expected: known.iter().map(|k| (*k).to_owned()).collect(),
            });
        }
        if let Some(missing) = self
            .fields_in(section)
            .find(|f| f.required && !present.contains(f.key.as_str()))
        {
            return Err(SettingsError::MissingField {
                section,
                field: missing.key.clone(),
            });
        }
        Ok(())
    }
}

fn object_keys(
    value: &serde_json::Value,
    section: Section,
) -> Result<BTreeSet<&str>, SettingsError> {
    match value {
        serde_json::Value::Null => Ok(BTreeSet::new()),
        serde_json::Value::Object(map) => Ok(map.keys().map(String::as_str).collect()),
        other => Err(SettingsError::Invalid {
            section,
            message: format!("expected an object, got {}", json_type(other)),
        }),
    }
}

fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Whether a field belongs to the (plain, returned by the API) settings or to the (encrypted,
/// write-only) credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Settings,
    Credentials,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Section::Settings => "settings",
            Section::Credentials => "credentials",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingField {
    /// The JSON key.
    pub key: String,
    pub section: Section,
    pub label: String,
    /// One sentence the console shows under the input.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub help: String,
    #[serde(flatten)]
    pub input: FieldInput,
    pub required: bool,
    /// The value used when absent (never for secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
}

impl SettingField {
    pub fn new(key: &str, section: Section, label: &str, input: FieldInput) -> Self {
        Self {
            key: key.to_owned(),
            section,
            label: label.to_owned(),
            help: String::new(),
            input,
            required: false,
            default: None,
        }
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub fn help(mut self, text: &str) -> Self {
        text.clone_into(&mut self.help);
        self
    }

    pub fn default_value(mut self, value: serde_json::Value) -> Self {
        self.default = Some(value);
        self
    }
}

/// How the console renders and checks a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
pub enum FieldInput {
    Text {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        placeholder: Option<String>,
    },
    /// Rendered as a password input; write-only over the API.
    Secret,
    Url,
    Integer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<i64>,
    },
    Bool,
    Choice {
        options: Vec<String>,
    },
    /// A file path on the daemon's host (CSV feeds).
    Path,
}

/// A credential value. Its `Debug` never shows the value, it cannot be serialised, and it is
/// read only through [`Secret::expose`], so leaking it takes a visible act.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

/// A connection's decrypted credentials, as the store hands them to the factory.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials(BTreeMap<String, Secret>);

impl Credentials {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, key: impl Into<String>, value: Secret) {
        self.0.insert(key.into(), value);
    }

    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.insert(key, Secret::new(value));
        self
    }

    /// From the decrypted JSON object; every value must be a string.
    pub fn from_json(value: serde_json::Value) -> Result<Self, SettingsError> {
        let map = match value {
            serde_json::Value::Null => return Ok(Self::default()),
            serde_json::Value::Object(map) => map,
            other => {
                return Err(SettingsError::Invalid {
                    section: Section::Credentials,
                    message: format!("expected an object, got {}", json_type(&other)),
                });
            }
        };
        let mut out = Self::default();
        for (key, value) in map {
            match value {
                serde_json::Value::String(text) => out.insert(key, Secret::new(text)),
                other => {
                    return Err(SettingsError::Invalid {
                        section: Section::Credentials,
                        message: format!("`{key}` must be a string, got {}", json_type(&other)),
                    });
                }
            }
        }
        Ok(out)
    }

    pub fn get(&self, key: &str) -> Option<&Secret> {
        self.0.get(key)
    }

    /// The value of a required credential.
    pub fn require(&self, key: &str) -> Result<&Secret, SettingsError> {
        self.get(key).ok_or_else(|| SettingsError::MissingField {
            section: Section::Credentials,
            field: key.to_owned(),
        })
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Every value, for the HTTP client's redactor.
    pub fn secret_values(&self) -> impl Iterator<Item = &str> {
        self.0.values().map(Secret::expose)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "[REDACTED]")))
            .finish()
    }
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("unknown {section} field `{field}` (expected one of: {})", expected.join(", "))]
    UnknownField {
        section: Section,
        field: String,
        expected: Vec<String>,
    },
    #[error("missing required {section} field `{field}`")]
    MissingField { section: Section, field: String },
    #[error("invalid {section}: {message}")]
    Invalid { section: Section, message: String },
    #[error("no connector is registered for platform `{0}`")]
    UnknownPlatform(String),
}

/// Deserialises a connector's typed settings. Declare the type with
/// `#[serde(deny_unknown_fields)]`; a `null` value (no settings stored) reads as `{}`.
pub fn parse_settings<T: DeserializeOwned>(value: &serde_json::Value) -> Result<T, SettingsError> {
    let value = match value {
        serde_json::Value::Null => serde_json::Value::Object(serde_json::Map::new()),
        other => other.clone(),
    };
    serde_json::from_value(value).map_err(|e| SettingsError::Invalid {
        section: Section::Settings,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> SettingsSchema {
        SettingsSchema::new(vec![
            SettingField::new(
                "shop_domain",
                Section::Settings,
                "Shop domain",
                FieldInput::Url,
            )
            .required(),
            SettingField::new(
                "api_version",
                Section::Settings,
                "API version",
                FieldInput::Text { placeholder: None },
            )
            .default_value(json!("2025-01")),
            SettingField::new(
                "access_token",
                Section::Credentials,
                "Token",
                FieldInput::Secret,
            )
            .required(),
        ])
    }

    #[test]
    fn accepts_known_fields() {
        let creds = Credentials::new().with("access_token", "shpat_x");
        schema()
            .check(&json!({"shop_domain": "a.myshopify.com"}), &creds)
            .unwrap();
    }

    #[test]
    fn rejects_unknown_and_missing_fields() {
        let creds = Credentials::new().with("access_token", "shpat_x");
        let err = schema()
            .check(&json!({"shop_domain": "a", "shop_domian": "b"}), &creds)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown settings field `shop_domian`"),
            "{err}"
        );
        let err = schema().check(&json!({}), &creds).unwrap_err();
        assert!(matches!(err, SettingsError::MissingField { .. }));
        let err = schema()
            .check(
                &json!({"shop_domain": "a"}),
                &creds.clone().with("password", "p"),
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("credentials field `password`"),
            "{err}"
        );
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let creds = Credentials::new().with("access_token", "shpat_very_secret");
        let text = format!("{creds:?} {:?}", creds.get("access_token"));
        assert!(!text.contains("shpat_very_secret"), "{text}");
    }

    #[test]
    fn schema_serialises_for_the_console() {
        let text = serde_json::to_value(schema()).unwrap();
        assert_eq!(text["fields"][0]["input"], "url");
        assert_eq!(text["fields"][2]["section"], "credentials");
    }
}
