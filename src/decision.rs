//! Stage 5, the decision: allow or deny, which policies decided it, and what went wrong on the way.
//!
//! A deny is a value, never an `Err`: every failure on the decision path becomes a deny here.

use serde::Serialize;

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Whether the action is allowed.
    #[serde(rename = "decision", serialize_with = "allow_or_deny")]
    pub allow: bool,
    /// `@id`s of the determining policies.
    pub policies: Vec<String>,
    /// Evaluation errors, and the reason a check was denied before evaluation.
    pub errors: Vec<String>,
}

impl Decision {
    /// A deny that no policy made, with the reason.
    pub fn deny(reason: impl Into<String>) -> Self {
        Self {
            allow: false,
            policies: Vec::new(),
            errors: vec![reason.into()],
        }
    }

    /// `"allow"` or `"deny"`.
    pub fn as_str(&self) -> &'static str {
        Self::word(self.allow)
    }

    /// The word for an allow (`true`) or a deny: the only place that spells them.
    pub fn word(allow: bool) -> &'static str {
        if allow {
            "allow"
        } else {
            "deny"
        }
    }
}

fn allow_or_deny<S: serde::Serializer>(allow: &bool, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(Decision::word(*allow))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_the_contract_says() {
        let d = Decision::deny("no");
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"decision": "deny", "policies": [], "errors": ["no"]})
        );
    }
}
