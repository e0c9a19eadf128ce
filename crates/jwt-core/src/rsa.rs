//! RSA key generation. The crypto library that signs (aws-lc, through jsonwebtoken's
//! `aws_lc_rs` backend) also makes the keys, so one implementation handles private keys.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// A new 2048-bit RSA key as PKCS#8 v1 DER.
pub(crate) fn generate_pkcs8() -> Result<Zeroizing<Vec<u8>>> {
    let pair = KeyPair::generate(KeySize::Rsa2048)
        .map_err(|_| Error::InvalidKey("RSA key generation failed".into()))?;
    let der = pair.as_der().map_err(|_| Error::InvalidKey("RSA key encoding failed".into()))?;
    Ok(Zeroizing::new(der.as_ref().to_vec()))
}
