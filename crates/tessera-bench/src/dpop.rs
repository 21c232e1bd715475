//! Owns the bench's DPoP proofs (RFC 9449 §4.2): one P-256 key per run, and proofs signed
//! with it ahead of the timed part, each used once.
//!
//! A proof is a JWS with the header `{"typ":"dpop+jwt","alg":"ES256","jwk":{...}}` (the
//! public key) and the claims `jti` (unique), `htm` (`POST`), `htu` (the token endpoint's
//! URL) and `iat` (when it was made). The server records each `jti` once (§11.1), so a proof
//! sent twice would be refused: the load generator takes each from a [`ProofPool`] and
//! stops when the pool is empty rather than resend one. Signing is not free (an ECDSA
//! signature each), and the load generator shares the machine with the server: proofs are
//! made in batches between measurements ([`ProofMaker::make`], on every core), never while
//! a measurement runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::HeaderValue;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{
    EcdsaKeyPair, KeyPair as _, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};

/// Signs DPoP proofs for one token endpoint with one key.
pub struct ProofMaker {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    /// base64url of the JWS header, with the public key as `jwk`.
    header_b64: String,
    /// The `htu` claim: the token endpoint's URL.
    htu: String,
}

impl ProofMaker {
    /// A new P-256 key for proofs sent to `htu` (the token endpoint's URL, as the server
    /// names it: its issuer and the path).
    pub fn new(htu: &str) -> Result<Self> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow!("generating a DPoP key"))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| anyhow!("loading the generated DPoP key"))?;
        let header = serde_json::json!({
            "typ": "dpop+jwt",
            "alg": "ES256",
            "jwk": public_jwk(key.public_key().as_ref())?,
        });
        let maker = Self {
            key,
            rng,
            header_b64: URL_SAFE_NO_PAD.encode(header.to_string()),
            htu: htu.to_owned(),
        };
        maker.self_check()?;
        Ok(maker)
    }

    /// One proof, `iat` now.
    pub fn proof(&self) -> Result<String> {
        let mut jti = [0u8; 16];
        self.rng
            .fill(&mut jti)
            .map_err(|_| anyhow!("system random generator failed"))?;
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = serde_json::json!({
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "htm": "POST",
            "htu": self.htu,
            "iat": iat,
        });
        let mut out = String::with_capacity(self.header_b64.len() + 300);
        out.push_str(&self.header_b64);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut out);
        let signature = self
            .key
            .sign(&self.rng, out.as_bytes())
            .map_err(|_| anyhow!("ES256 signing failed"))?;
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut out);
        Ok(out)
    }

    /// `count` proofs as header values, signed on every core (a blocking call: run it off
    /// the async workers, and never while a measurement runs).
    pub fn make(self: &Arc<Self>, count: usize) -> Result<Vec<HeaderValue>> {
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(count.max(1));
        let per_thread = count.div_ceil(threads);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|i| {
                    let n = per_thread.min(count.saturating_sub(i * per_thread));
                    scope.spawn(move || -> Result<Vec<HeaderValue>> {
                        (0..n)
                            .map(|_| {
                                HeaderValue::try_from(self.proof()?)
                                    .context("a proof is not a header value")
                            })
                            .collect()
                    })
                })
                .collect();
            let mut all = Vec::with_capacity(count);
            for worker in workers {
                all.extend(
                    worker
                        .join()
                        .map_err(|_| anyhow!("a proof signer panicked"))??,
                );
            }
            Ok(all)
        })
    }

    /// Signs one proof and verifies it with the public key, so a broken signer fails before
    /// anything is measured.
    fn self_check(&self) -> Result<()> {
        let proof = self.proof()?;
        let (signed, signature) = proof
            .rsplit_once('.')
            .context("a proof has no signature part")?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .context("decoding the signature")?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref())
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| anyhow!("DPoP self-check: the proof's signature does not verify"))
    }
}

/// The public JWK (RFC 7518 §6.2.1) of an uncompressed P-256 point (`04 || x || y`).
fn public_jwk(point: &[u8]) -> Result<serde_json::Value> {
    let coordinates = match point {
        [4, rest @ ..] if rest.len() == 64 => rest,
        _ => return Err(anyhow!("unexpected P-256 public key encoding")),
    };
    let (x, y) = coordinates.split_at(32);
    Ok(serde_json::json!({
        "kty": "EC",
        "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(x),
        "y": URL_SAFE_NO_PAD.encode(y),
    }))
}

/// A proof maker and the pool it fills, for one measured load.
pub struct Proofs {
    pub maker: Arc<ProofMaker>,
    pub pool: Arc<ProofPool>,
}

impl Proofs {
    /// Proofs for the token endpoint at `htu`, with a new key; the pool starts empty.
    pub fn new(htu: &str) -> Result<Self> {
        Ok(Self {
            maker: Arc::new(ProofMaker::new(htu)?),
            pool: Arc::default(),
        })
    }

    /// Replaces the pool's proofs with `count` new ones (`iat` now), signed on every core;
    /// clears the pool's [`ProofPool::ran_out`].
    pub async fn refill(&self, count: usize) -> Result<()> {
        let maker = Arc::clone(&self.maker);
        let proofs = tokio::task::spawn_blocking(move || maker.make(count))
            .await
            .context("the proof signers stopped")??;
        self.pool.refill(proofs);
        self.pool.ran_out();
        Ok(())
    }
}

/// Proofs not yet sent: each taken once. Refilled between measurements.
#[derive(Default)]
pub struct ProofPool {
    proofs: Mutex<Vec<HeaderValue>>,
    ran_out: AtomicBool,
}

impl ProofPool {
    /// Replaces what is left with `proofs` (older ones, unsent, are dropped).
    pub fn refill(&self, proofs: Vec<HeaderValue>) {
        if let Ok(mut pool) = self.proofs.lock() {
            *pool = proofs;
        }
    }

    /// A proof not sent before, or `None` when none is left (noted: [`Self::ran_out`]).
    pub fn take(&self) -> Option<HeaderValue> {
        let proof = self.proofs.lock().ok().and_then(|mut pool| pool.pop());
        if proof.is_none() {
            self.ran_out.store(true, Ordering::Relaxed);
        }
        proof
    }

    /// Whether a request found the pool empty since the last call (which clears it).
    pub fn ran_out(&self) -> bool {
        self.ran_out.swap(false, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn part(proof: &str, n: usize) -> serde_json::Value {
        let text = proof.split('.').nth(n).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).unwrap()).unwrap()
    }

    #[test]
    fn proofs_have_the_rfc_9449_shape_and_unique_ids() {
        let maker = Arc::new(ProofMaker::new("http://127.0.0.1:1/oauth2/token").unwrap());
        let proofs = maker.make(50).unwrap();
        assert_eq!(proofs.len(), 50);
        let proof = proofs[0].to_str().unwrap();
        let header = part(proof, 0);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["jwk"]["kty"], "EC");
        assert_eq!(header["jwk"]["crv"], "P-256");
        assert!(header["jwk"].get("d").is_none(), "no private key");
        let claims = part(proof, 1);
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], "http://127.0.0.1:1/oauth2/token");
        assert!(claims["iat"].as_u64().unwrap() > 1_700_000_000);
        let jtis: std::collections::HashSet<String> = proofs
            .iter()
            .map(|p| {
                part(p.to_str().unwrap(), 1)["jti"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(jtis.len(), 50);
    }

    #[test]
    fn a_pool_gives_each_proof_once_and_says_when_it_ran_out() {
        let pool = ProofPool::default();
        pool.refill(vec![
            HeaderValue::from_static("a"),
            HeaderValue::from_static("b"),
        ]);
        let mut taken = vec![pool.take().unwrap(), pool.take().unwrap()];
        taken.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        assert_eq!(taken, ["a", "b"]);
        assert!(!pool.ran_out());
        assert!(pool.take().is_none());
        assert!(pool.ran_out());
        assert!(!pool.ran_out(), "cleared once read");
    }
}
