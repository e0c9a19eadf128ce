//! What an email address must look like before it is stored: the HTTP contract's rule,
//! checked on the address in Unicode NFC, which is also the form that is stored. It lives with
//! the store because every way in (API, command line) must store the same form.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// The longest email address accepted, in bytes of UTF-8 (after NFC normalization).
pub const MAX_EMAIL_BYTES: usize = 254;

/// Why an email address was refused. The messages say which clause failed, never the address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEmail {
    /// Longer than [`MAX_EMAIL_BYTES`].
    #[error("an email address is at most {MAX_EMAIL_BYTES} bytes")]
    TooLong,
    /// A whitespace, separator, control or format character (bidirectional overrides,
    /// zero-width characters included) somewhere in the address.
    #[error(
        "an email address cannot contain U+{:04X} (whitespace, control or format character)",
        u32::from(*.0)
    )]
    ForbiddenCharacter(char),
    /// No `@`, or more than one.
    #[error("an email address has exactly one `@`")]
    AtSign,
    /// Nothing before the `@`.
    #[error("the part before `@` is empty")]
    EmptyLocalPart,
    /// The part before the `@` starts or ends with a dot, or has two in a row.
    #[error("the part before `@` cannot start or end with a dot, nor have two in a row")]
    LocalPartDots,
    /// The domain is a single label (`localhost`).
    #[error("the domain needs at least two labels separated by dots")]
    SingleLabel,
    /// The domain has an empty label (`example..com`, `example.com.`).
    #[error("a label of the domain is empty")]
    EmptyLabel,
    /// A label of the domain starts or ends with a hyphen.
    #[error("a label of the domain cannot start or end with a hyphen")]
    LabelHyphen,
    /// A label of the domain has something else than letters, digits and hyphens.
    #[error("a label of the domain may hold only letters, digits and hyphens")]
    LabelCharacter,
}

/// The address as it is stored (in Unicode NFC) if it is valid.
///
/// An email is valid when it has one `@`, a non-empty local part without leading, trailing or
/// consecutive dots, and a domain of at least two dot-separated labels (letters, digits,
/// hyphens; no empty label, none starting or ending with a hyphen), at most
/// [`MAX_EMAIL_BYTES`] bytes; no whitespace, control or format character (Unicode Cc and Cf,
/// bidirectional overrides included) anywhere, nor any Unicode separator (Zs, Zl, Zp).
///
/// Internationalized addresses are accepted: the letters and digits of domain labels are
/// Unicode ones ([`char::is_alphanumeric`]), the local part may hold any character not refused
/// above, and the address is checked, measured and returned in NFC.
/// Nothing is trimmed: a leading or trailing space is whitespace, hence refused. Case is kept.
///
/// ```
/// use jwt_auth_store::{InvalidEmail, normalize_email};
///
/// assert_eq!(normalize_email("alice@example.com").as_deref(), Ok("alice@example.com"));
/// // A decomposed `ü` (u + U+0308) comes back composed.
/// assert_eq!(normalize_email("jo@bu\u{308}cher.de").as_deref(), Ok("jo@bücher.de"));
///
/// assert_eq!(normalize_email("alice@localhost"), Err(InvalidEmail::SingleLabel));
/// assert_eq!(normalize_email("alice..b@example.com"), Err(InvalidEmail::LocalPartDots));
/// assert_eq!(normalize_email(" alice@example.com"), Err(InvalidEmail::ForbiddenCharacter(' ')));
/// assert_eq!(normalize_email("a@b@example.com"), Err(InvalidEmail::AtSign));
/// ```
pub fn normalize_email(input: &str) -> Result<String, InvalidEmail> {
    let email: String = input.nfc().collect();
    if let Some(c) = email.chars().find(|&c| forbidden(c)) {
        return Err(InvalidEmail::ForbiddenCharacter(c));
    }
    if email.len() > MAX_EMAIL_BYTES {
        return Err(InvalidEmail::TooLong);
    }
    let Some((local, domain)) = email.split_once('@') else { return Err(InvalidEmail::AtSign) };
    if domain.contains('@') {
        return Err(InvalidEmail::AtSign);
    }
    check_local_part(local)?;
    check_domain(domain)?;
    Ok(email)
}

/// Whitespace, separators, control and format characters.
fn forbidden(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c.general_category(),
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::SpaceSeparator
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
}

fn check_local_part(local: &str) -> Result<(), InvalidEmail> {
    if local.is_empty() {
        return Err(InvalidEmail::EmptyLocalPart);
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(InvalidEmail::LocalPartDots);
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), InvalidEmail> {
    if !domain.contains('.') {
        return Err(InvalidEmail::SingleLabel);
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(InvalidEmail::EmptyLabel);
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(InvalidEmail::LabelHyphen);
        }
        if !label.chars().all(|c| c.is_alphanumeric() || c == '-') {
            return Err(InvalidEmail::LabelCharacter);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use unicode_normalization::is_nfc;

    use super::*;

    fn refused(input: &str) -> InvalidEmail {
        normalize_email(input).expect_err(input)
    }

    fn accepted(input: &str) -> String {
        normalize_email(input).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    #[test]
    fn a_plain_address_is_returned_as_given() {
        assert_eq!(accepted("a@example.com"), "a@example.com");
        assert_eq!(
            accepted("Alice.Smith+tag@Mail.Example.COM"),
            "Alice.Smith+tag@Mail.Example.COM"
        );
    }

    #[test]
    fn exactly_one_at_sign() {
        assert_eq!(refused("a@b@example.com"), InvalidEmail::AtSign);
        assert_eq!(refused("example.com"), InvalidEmail::AtSign);
        assert_eq!(refused(""), InvalidEmail::AtSign);
        accepted("a@example.com");
    }

    #[test]
    fn the_local_part_is_not_empty() {
        assert_eq!(refused("@example.com"), InvalidEmail::EmptyLocalPart);
        accepted("a@example.com");
    }

    #[test]
    fn the_local_part_has_no_leading_trailing_or_consecutive_dot() {
        assert_eq!(refused(".a@x.io"), InvalidEmail::LocalPartDots);
        assert_eq!(refused("a.@x.io"), InvalidEmail::LocalPartDots);
        assert_eq!(refused("a..b@x.io"), InvalidEmail::LocalPartDots);
        assert_eq!(accepted("a.b@x.io"), "a.b@x.io");
    }

    #[test]
    fn the_domain_has_two_labels_or_more() {
        assert_eq!(refused("a@localhost"), InvalidEmail::SingleLabel);
        accepted("a@x.io");
        accepted("a@mail.x.io");
    }

    #[test]
    fn no_label_is_empty() {
        assert_eq!(refused("a@example..com"), InvalidEmail::EmptyLabel);
        assert_eq!(refused("a@.example.com"), InvalidEmail::EmptyLabel);
        assert_eq!(refused("a@example.com."), InvalidEmail::EmptyLabel);
        accepted("a@example.com");
    }

    #[test]
    fn no_label_starts_or_ends_with_a_hyphen() {
        assert_eq!(refused("a@-x.io"), InvalidEmail::LabelHyphen);
        assert_eq!(refused("a@x-.io"), InvalidEmail::LabelHyphen);
        assert_eq!(refused("a@x.-io"), InvalidEmail::LabelHyphen);
        assert_eq!(accepted("a@x-y.io"), "a@x-y.io");
    }

    #[test]
    fn labels_have_only_letters_digits_and_hyphens() {
        assert_eq!(refused("a@x_y.io"), InvalidEmail::LabelCharacter);
        assert_eq!(refused("a@x+y.io"), InvalidEmail::LabelCharacter);
        assert_eq!(refused("a@[127.0.0.1]"), InvalidEmail::LabelCharacter);
        accepted("a@x9-y.io");
        accepted("a@123.io");
    }

    #[test]
    fn at_most_254_bytes() {
        let domain = "@example.com";
        let at_limit = format!("{}{domain}", "a".repeat(MAX_EMAIL_BYTES - domain.len()));
        assert_eq!(at_limit.len(), 254);
        assert_eq!(accepted(&at_limit), at_limit);
        let over = format!("a{at_limit}");
        assert_eq!(refused(&over), InvalidEmail::TooLong);
    }

    #[test]
    fn the_limit_counts_bytes_of_the_nfc_form() {
        // 120 decomposed `é` (3 bytes each) shrink to 2 bytes each under NFC.
        let decomposed = format!("{}@example.com", "e\u{301}".repeat(120));
        assert!(decomposed.len() > MAX_EMAIL_BYTES);
        assert_eq!(accepted(&decomposed).len(), 120 * 2 + "@example.com".len());
        let composed_over = format!("{}@example.com", "é".repeat(122));
        assert_eq!(refused(&composed_over), InvalidEmail::TooLong);
    }

    #[test]
    fn bidirectional_overrides_are_refused_anywhere() {
        for input in ["\u{202E}a@x.io", "a\u{202E}@x.io", "a@\u{202E}x.io", "a@x.io\u{202E}"] {
            assert_eq!(refused(input), InvalidEmail::ForbiddenCharacter('\u{202E}'), "{input:?}");
        }
        assert!(refused("a\u{202E}@x.io").to_string().contains("U+202E"));
        accepted("a@x.io");
    }

    #[test]
    fn format_characters_are_refused() {
        // ZERO WIDTH SPACE is Cf, not whitespace.
        assert_eq!(refused("a\u{200B}b@x.io"), InvalidEmail::ForbiddenCharacter('\u{200B}'));
        assert_eq!(refused("ab@x\u{200D}.io"), InvalidEmail::ForbiddenCharacter('\u{200D}'));
        assert_eq!(refused("\u{FEFF}ab@x.io"), InvalidEmail::ForbiddenCharacter('\u{FEFF}'));
        // SOFT HYPHEN, Cf as well.
        assert_eq!(refused("\u{AD}+@0.aa"), InvalidEmail::ForbiddenCharacter('\u{AD}'));
        accepted("ab@x.io");
    }

    #[test]
    fn whitespace_separators_and_controls_are_refused() {
        for c in ['\t', ' ', '\u{A0}', '\n', '\r', '\0', '\u{7F}', '\u{85}', '\u{2028}', '\u{3000}']
        {
            for input in [format!("{c}a@x.io"), format!("a{c}b@x.io"), format!("a@x.io{c}")] {
                assert_eq!(refused(&input), InvalidEmail::ForbiddenCharacter(c), "{input:?}");
            }
        }
        accepted("ab@x.io");
    }

    #[test]
    fn internationalized_addresses_are_accepted_in_nfc() {
        let decomposed = "U\u{308}ni\u{308}code@bu\u{308}cher.de";
        let composed = "Ünïcode@bücher.de";
        assert_ne!(decomposed, composed);
        assert_eq!(accepted(decomposed), composed);
        assert_eq!(accepted(composed), composed);
        accepted("用户@例子.中国");
    }

    #[test]
    fn the_message_does_not_repeat_the_address() {
        let message = refused("secret.name@localhost").to_string();
        assert!(!message.contains("secret"), "{message}");
    }

    /// Every character of general category Cc or Cf.
    fn control_or_format() -> impl Strategy<Value = char> {
        let all: Vec<char> = (0..=u32::from(char::MAX))
            .filter_map(char::from_u32)
            .filter(|c| {
                matches!(c.general_category(), GeneralCategory::Control | GeneralCategory::Format)
            })
            .collect();
        proptest::sample::select(all)
    }

    /// Strings that are mostly valid addresses, with decomposed letters (NFC changes them) and
    /// lengths on both sides of the limit.
    fn address_like() -> impl Strategy<Value = String> {
        concat!(
            "([a-z0-9+]|e\u{301}|\u{e9}){1,60}(\\.[a-zA-Z0-9+]{1,20}){0,2}",
            "@([a-z0-9]|u\u{308}|\u{fc}){1,60}(-[a-z0-9]{1,10})?(\\.([a-z]|e\u{301}){2,60}){1,2}",
        )
    }

    proptest! {
        #[test]
        fn a_control_or_format_character_anywhere_is_refused(
            address in address_like(),
            c in control_or_format(),
            position in any::<prop::sample::Index>(),
        ) {
            let boundaries: Vec<usize> =
                address.char_indices().map(|(i, _)| i).chain([address.len()]).collect();
            let (head, tail) = address.split_at(boundaries[position.index(boundaries.len())]);
            let input = format!("{head}{c}{tail}");
            prop_assert_eq!(normalize_email(&input), Err(InvalidEmail::ForbiddenCharacter(c)));
        }

        #[test]
        fn what_is_accepted_is_nfc_within_the_limit_and_stable(
            input in prop_oneof![address_like(), any::<String>()],
        ) {
            if let Ok(email) = normalize_email(&input) {
                prop_assert!(is_nfc(&email));
                prop_assert!(email.len() <= MAX_EMAIL_BYTES);
                prop_assert_eq!(normalize_email(&email), Ok(email.clone()));
            }
        }
    }
}
