//! The integration tests of jwt-core, one test binary: `dpop` for every reason a DPoP proof is
//! refused, `properties` over arbitrary input, `rejections` for every reason a token is
//! refused, `rfc_vectors` against the RFCs' own examples, and `rotation` of refresh tokens
//! through `Sessions`. Filter by module, e.g.
//! `cargo nextest run -p jwt-core --test main -E 'test(/^rejections::/)'`.

/// Asserts (in every module below) that `$result` is `Err` matching `$pattern`, showing what it was otherwise.
macro_rules! assert_rejects {
    ($result:expr, $pattern:pat $(if $guard:expr)? $(,)?) => {
        match $result {
            Err($pattern) $(if $guard)? => {}
            other => panic!("expected Err({}), got {other:?}", stringify!($pattern)),
        }
    };
}

mod dpop;
mod properties;
mod rejections;
mod rfc_vectors;
mod rotation;
