//! CNI errors on the wire: the spec's code table and the `{cniVersion, code, msg, details}` object.

use serde::Serialize;

use super::version::SpecVersion;

/// A CNI error code: the spec's well-known codes (0–99) and cnm's own (100+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 1: the config's `cniVersion` is not one this plugin speaks, or the command needs a newer one.
    IncompatibleVersion,
    /// 2: a field of the network configuration is not supported.
    UnsupportedField,
    /// 3: the container is unknown or does not exist; the runtime need not clean up.
    UnknownContainer,
    /// 4: a `CNI_*` environment variable is missing or invalid.
    InvalidEnvironment,
    /// 5: an I/O failure.
    Io,
    /// 6: stdin or another input could not be decoded.
    Decode,
    /// 7: the network configuration is invalid.
    InvalidConfig,
    /// 11: a transient failure; the runtime should retry later.
    TryAgainLater,
    /// 50: STATUS: the plugin cannot serve ADD now.
    NotAvailable,
    /// 51: STATUS: the plugin cannot serve ADD and existing containers may be damaged.
    NotAvailableDamaged,
    /// 100: an internal error of cnm (a bug); the details say where.
    Internal,
    /// 101: the command or feature is not implemented by this plugin yet.
    NotImplemented,
    /// 102: no address can be given: the pool is exhausted or the requested one is taken.
    AddressUnavailable,
    /// 103: CHECK found the attachment different from what ADD made.
    CheckFailed,
    /// 104: a requested host port (address, protocol, port) is already published by another
    /// container. Not 7: the configuration is valid and the conflict is the host's state, like
    /// an exhausted pool (102); not 11: it does not clear up by waiting.
    PortInUse,
    /// A code returned by a delegated plugin, passed through unchanged.
    Other(u32),
}

impl ErrorCode {
    /// The number on the wire.
    pub fn as_u32(self) -> u32 {
        match self {
            ErrorCode::IncompatibleVersion => 1,
            ErrorCode::UnsupportedField => 2,
            ErrorCode::UnknownContainer => 3,
            ErrorCode::InvalidEnvironment => 4,
            ErrorCode::Io => 5,
            ErrorCode::Decode => 6,
            ErrorCode::InvalidConfig => 7,
            ErrorCode::TryAgainLater => 11,
            ErrorCode::NotAvailable => 50,
            ErrorCode::NotAvailableDamaged => 51,
            ErrorCode::Internal => 100,
            ErrorCode::NotImplemented => 101,
            ErrorCode::AddressUnavailable => 102,
            ErrorCode::CheckFailed => 103,
            ErrorCode::PortInUse => 104,
            ErrorCode::Other(n) => n,
        }
    }

    /// The code for a number read from another plugin's error.
    pub fn from_u32(n: u32) -> Self {
        [
            ErrorCode::IncompatibleVersion,
            ErrorCode::UnsupportedField,
            ErrorCode::UnknownContainer,
            ErrorCode::InvalidEnvironment,
            ErrorCode::Io,
            ErrorCode::Decode,
            ErrorCode::InvalidConfig,
            ErrorCode::TryAgainLater,
            ErrorCode::NotAvailable,
            ErrorCode::NotAvailableDamaged,
            ErrorCode::Internal,
            ErrorCode::NotImplemented,
            ErrorCode::AddressUnavailable,
            ErrorCode::CheckFailed,
            ErrorCode::PortInUse,
        ]
        .into_iter()
        .find(|c| c.as_u32() == n)
        .unwrap_or(ErrorCode::Other(n))
    }
}

/// An error as a runtime sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg} (CNI error {code})", code = self.code.as_u32())]
pub struct CniError {
    /// The code.
    pub code: ErrorCode,
    /// What went wrong, in one line a person can act on.
    pub msg: String,
    /// More context: the underlying cause or a hint; may be empty.
    pub details: String,
}

#[derive(Serialize)]
struct Wire<'a> {
    #[serde(rename = "cniVersion")]
    cni_version: SpecVersion,
    code: u32,
    msg: &'a str,
    details: &'a str,
}

impl CniError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, msg: impl Into<String>) -> Self {
        CniError {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    /// Adds details.
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    /// The error object as printed on stdout.
    pub fn to_json(&self, version: SpecVersion) -> serde_json::Value {
        serde_json::to_value(Wire {
            cni_version: version,
            code: self.code.as_u32(),
            msg: &self.msg,
            details: &self.details,
        })
        .expect("a struct of strings and numbers always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for n in [
            1, 2, 3, 4, 5, 6, 7, 11, 50, 51, 100, 101, 102, 103, 104, 999,
        ] {
            assert_eq!(ErrorCode::from_u32(n).as_u32(), n);
        }
        assert_eq!(ErrorCode::from_u32(999), ErrorCode::Other(999));
    }

    #[test]
    fn wire_shape() {
        let e = CniError::new(ErrorCode::InvalidConfig, "bad subnet").with_details("hint");
        insta::assert_json_snapshot!(e.to_json(SpecVersion::V1_0_0), @r#"
        {
          "cniVersion": "1.0.0",
          "code": 7,
          "msg": "bad subnet",
          "details": "hint"
        }
        "#);
    }
}
