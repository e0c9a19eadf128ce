//! Compact tokens against the fixture service that signs with EdDSA (the fixture's other three
//! keys verify beside it): the input as an `Authorization` header value, behind `Bearer `,
//! and as a token for `verify_access_ignoring_revocations`, `verify_access`, `verify_refresh` and
//! `verify_jws`. Its seeds are EdDSA tokens, so the fuzzer starts inside this algorithm's
//! signature check. What is asserted: `jwt_auth_fuzz::tokens`.
#![no_main]

use jwt_core::Algorithm;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| jwt_auth_fuzz::tokens::target(Algorithm::EdDSA).check_bytes(data));
