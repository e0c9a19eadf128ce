//! The integration tests of jwt-core, one test binary: `properties` over arbitrary input,
//! `rejections` for every reason a token is refused, `rfc_vectors` against the RFCs' own
//! examples, and `rotation` of refresh tokens through `Sessions`. Filter by module, e.g.
//! `cargo nextest run -p jwt-core --test main -E 'test(/^rejections::/)'`.

mod properties;
mod rejections;
mod rfc_vectors;
mod rotation;
