//! The email rule of the HTTP contract, checked wherever an email enters: one `@`; a non-empty
//! local part without leading, trailing or consecutive dots; a domain of at least two
//! dot-separated labels of letters, digits and hyphens (no empty label, none starting or
//! ending with a hyphen); at most 254 bytes; no whitespace, control, format, private-use or
//! unassigned character anywhere. Internationalized addresses are accepted and stored in
//! Unicode NFC.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// The longest email accepted, in bytes (after NFC normalization).
pub const MAX_EMAIL_BYTES: usize = 254;

/// Why an email was refused; the text says which part of the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("email is not a valid address: {0}")]
pub struct InvalidEmail(&'static str);

/// Characters refused anywhere: whitespace and separators, controls (Cc), format characters
/// (Cf, which include the bidirectional overrides and zero-width characters), private-use
/// and unassigned code points.
fn forbidden(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c.general_category(),
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::SpaceSeparator
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
                | GeneralCategory::PrivateUse
                | GeneralCategory::Surrogate
                | GeneralCategory::Unassigned
        )
}

fn valid_label(label: &str) -> Result<(), InvalidEmail> {
    if label.is_empty() {
        return Err(InvalidEmail("the domain has an empty label"));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(InvalidEmail("a domain label starts or ends with a hyphen"));
    }
    if !label.chars().all(|c| c == '-' || c.is_alphanumeric()) {
        return Err(InvalidEmail(
            "a domain label has a character other than letters, digits, hyphens",
        ));
    }
    Ok(())
}

/// The address as it is stored (NFC), or why it breaks the rule.
///
/// ```
/// use jwt_auth_store::normalize_email;
///
/// assert_eq!(normalize_email("ada@example.com").unwrap(), "ada@example.com");
/// assert!(normalize_email("ada@example..com").is_err());
/// assert!(normalize_email("ada\u{202E}@example.com").is_err()); // a bidirectional override
/// // Internationalized addresses are kept, composed: "u" + U+0308 becomes "ü".
/// assert_eq!(normalize_email("u\u{308}@bücher.de").unwrap(), "ü@bücher.de");
/// ```
pub fn normalize_email(input: &str) -> Result<String, InvalidEmail> {
    if input.chars().any(forbidden) {
        return Err(InvalidEmail("it contains whitespace, a control or a format character"));
    }
    let email: String = input.nfc().collect();
    if email.chars().any(forbidden) {
        return Err(InvalidEmail("it contains whitespace, a control or a format character"));
    }
    if email.len() > MAX_EMAIL_BYTES {
        return Err(InvalidEmail("it is longer than 254 bytes"));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(InvalidEmail("it has no `@`"));
    };
    if domain.contains('@') {
        return Err(InvalidEmail("it has more than one `@`"));
    }
    if local.is_empty() {
        return Err(InvalidEmail("the part before `@` is empty"));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(InvalidEmail("the part before `@` has a leading, trailing or double dot"));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(InvalidEmail("the domain needs at least two labels"));
    }
    labels.into_iter().try_for_each(valid_label)?;
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(email: &str) -> bool {
        normalize_email(email).is_ok()
    }

    #[test]
    fn every_clause_of_the_rule_beside_its_positive_control() {
        assert!(ok("a@example.com"));
        assert!(!ok("a@example..com"), "empty label");
        assert!(!ok("a@.example.com") && !ok("a@example.com."), "empty first or last label");
        assert!(ok("a.b@x.io"));
        assert!(!ok(".a@x.io") && !ok("a.@x.io") && !ok("a..b@x.io"), "dots in the local part");
        assert!(!ok("@x.io"), "empty local part");
        assert!(!ok("a@localhost"), "one label");
        assert!(ok("a@x-y.io"));
        assert!(!ok("a@-x.io") && !ok("a@x-.io"), "hyphen at a label's edge");
        assert!(!ok("a@x_y.io") && !ok("a@x!y.io"), "not a letter, digit or hyphen");
        assert!(!ok("a@b@x.io") && !ok("ax.io"), "one `@`");
        assert!(ok("a+tag!#$%&'*/=?^_`{|}~-@x.io"), "the local part is otherwise free");
        for c in [
            '\u{202E}', '\u{200B}', '\u{200E}', '\u{FEFF}', '\u{0007}', '\t', ' ', '\u{00A0}',
            '\u{2028}', '\u{E000}',
        ] {
            assert!(!ok(&format!("a{c}b@x.io")), "{:?} in the local part", c);
            assert!(!ok(&format!("ab@x{c}y.io")), "{:?} in the domain", c);
        }
    }

    #[test]
    fn at_most_254_bytes() {
        let local = "a".repeat(MAX_EMAIL_BYTES - "@x.io".len());
        assert!(ok(&format!("{local}@x.io")));
        assert!(!ok(&format!("{local}b@x.io")));
        // Bytes, not characters: 127 two-byte letters make 254 bytes.
        let wide = "é".repeat(124);
        assert_eq!(format!("{wide}@x.io").len(), 253);
        assert!(ok(&format!("{wide}@x.io")));
        assert!(!ok(&format!("{wide}é@x.io")));
    }

    #[test]
    fn internationalized_addresses_are_stored_composed() {
        let decomposed = "U\u{308}ni\u{308}code@bu\u{308}cher.de";
        assert_eq!(normalize_email(decomposed).unwrap(), "Ünïcode@bücher.de");
        assert_eq!(normalize_email("Ünïcode@bücher.de").unwrap(), "Ünïcode@bücher.de");
        assert!(ok("пример@пример.рф"));
    }

    proptest! {
        #[test]
        fn any_control_or_format_character_is_refused(
            local in "[a-z]{1,10}",
            c in any::<char>().prop_filter("Cc or Cf", |c| matches!(
                c.general_category(), GeneralCategory::Control | GeneralCategory::Format)),
            at in 0usize..3,
        ) {
            let email = match at {
                0 => format!("{c}{local}@example.com"),
                1 => format!("{local}{c}@example.com"),
                _ => format!("{local}@exa{c}mple.com"),
            };
            prop_assert!(normalize_email(&email).is_err());
        }

        #[test]
        fn accepted_addresses_are_nfc_and_within_bounds(input in "\\PC{0,80}@\\PC{0,40}") {
            if let Ok(email) = normalize_email(&input) {
                prop_assert!(email.len() <= MAX_EMAIL_BYTES);
                prop_assert_eq!(email.nfc().collect::<String>(), email.clone());
                prop_assert!(!email.chars().any(forbidden));
            }
        }
    }
}
