//! `tessera jwt ...`: what a vendor backend needs to try the JWT-bearer flow in a minute.
//!
//! `keygen` writes a key pair as PEM files (`private.pem`, PKCS#8, mode 0600; `public.pem`,
//! SubjectPublicKeyInfo, for `tessera trust add --public-key`): ES256 by default, RS256
//! (2048-bit) or EdDSA (Ed25519) on request. `sign` prints a fresh JWT signed with such a key:
//! a new random `jti`, `iat` now and `exp` after `--ttl`, and in its header the key's RFC 7638
//! thumbprint as `kid`, the one `trust add --public-key` registers the public key with (so
//! that, with several keys registered, the JWT names its own; `--kid` names another, as a
//! JWKS registration has it). Neither touches the database.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use clap::Subcommand;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use serde_json::{json, Map, Value};

use crate::cli::{now, print_json};

/// SubjectPublicKeyInfo DER before the key bytes: P-256, then Ed25519.
const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const ED25519_SPKI_PREFIX: &[u8] = &[
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// JWT subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write private.pem and public.pem into a directory.
    Keygen {
        /// The directory (created if missing); existing key files are not overwritten.
        #[arg(long)]
        out: PathBuf,
        /// ES256, RS256 or EdDSA.
        #[arg(long, default_value = "ES256")]
        alg: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a fresh JWT signed with a private key from `keygen`.
    Sign {
        /// The PEM private key (PKCS#8).
        #[arg(long)]
        key: PathBuf,
        /// The `iss` claim: the issuer as registered with `tessera trust add --issuer`.
        #[arg(long)]
        iss: String,
        /// The `sub` claim: the end user.
        #[arg(long)]
        sub: String,
        /// The `aud` claim, e.g. the token endpoint URL (none if not given).
        #[arg(long)]
        aud: Option<String>,
        /// Lifetime, seconds.
        #[arg(long, default_value_t = 300)]
        ttl: i64,
        /// Another claim, NAME=VALUE (repeatable); a VALUE that is JSON (a number, true,
        /// "quoted") is taken as JSON, anything else as a string.
        #[arg(long = "claim")]
        claims: Vec<String>,
        /// The header's `kid`: by default the key's RFC 7638 thumbprint, which
        /// `--public-key` registers a PEM key with; give the one of a JWKS registration.
        #[arg(long)]
        kid: Option<String>,
    },
}

/// Runs a jwt subcommand.
pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Keygen { out, alg, json } => {
            let (private, public) = match alg.as_str() {
                "ES256" => es256()?,
                "EdDSA" => eddsa()?,
                "RS256" => rs256()?,
                other => bail!("--alg must be ES256, RS256 or EdDSA, not '{other}'"),
            };
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let private_path = out.join("private.pem");
            let public_path = out.join("public.pem");
            write_new(&private_path, &private, true)?;
            write_new(&public_path, &public, false)?;
            if json {
                print_json(&json!({
                    "alg": alg,
                    "private_key": private_path.display().to_string(),
                    "public_key": public_path.display().to_string(),
                }));
            } else {
                println!("wrote {} (keep it secret)", private_path.display());
                println!(
                    "wrote {} (give it to `tessera trust add --public-key`)",
                    public_path.display()
                );
            }
            Ok(())
        }
        Command::Sign {
            key,
            iss,
            sub,
            aud,
            ttl,
            claims,
            kid,
        } => {
            if ttl < 1 {
                bail!("--ttl must be at least 1 second");
            }
            let pem = std::fs::read(&key).with_context(|| format!("reading {}", key.display()))?;
            let (alg, encoding) = signing_key(&pem).ok_or_else(|| {
                anyhow!(
                    "{}: not a PKCS#8 EC P-256, RSA or Ed25519 private key",
                    key.display()
                )
            })?;
            let t = now();
            let mut body = Map::new();
            for c in &claims {
                let (name, value) = c
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--claim takes NAME=VALUE, got '{c}'"))?;
                let value =
                    serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
                body.insert(name.to_owned(), value);
            }
            body.insert("iss".into(), iss.into());
            body.insert("sub".into(), sub.into());
            if let Some(aud) = aud {
                body.insert("aud".into(), aud.into());
            }
            body.insert("iat".into(), t.into());
            let exp = t
                .checked_add(ttl)
                .ok_or_else(|| anyhow!("--ttl is too large"))?;
            body.insert("exp".into(), exp.into());
            let jti = URL_SAFE_NO_PAD.encode(tessera_core::secret::random_bytes::<16>());
            body.insert("jti".into(), jti.into());
            let mut header = Header::new(alg);
            // The key's RFC 7638 thumbprint, the kid its public key was registered with.
            header.kid = kid.or_else(|| {
                public_pem(&pem, alg)
                    .and_then(|public| tessera_core::client_assertion::pem_jwk(&public).ok())
                    .and_then(|jwk| jwk.common.key_id)
            });
            let token = jsonwebtoken::encode(&header, &Value::Object(body), &encoding)
                .context("signing")?;
            println!("{token}");
            Ok(())
        }
    }
}

/// The algorithm and key of a PEM private key, by its type.
fn signing_key(pem: &[u8]) -> Option<(Algorithm, EncodingKey)> {
    if let Ok(k) = EncodingKey::from_ec_pem(pem) {
        return Some((Algorithm::ES256, k));
    }
    if let Ok(k) = EncodingKey::from_ed_pem(pem) {
        return Some((Algorithm::EdDSA, k));
    }
    EncodingKey::from_rsa_pem(pem)
        .ok()
        .map(|k| (Algorithm::RS256, k))
}

/// The public key (SubjectPublicKeyInfo PEM) of a PEM private key of `alg`.
fn public_pem(private: &[u8], alg: Algorithm) -> Option<String> {
    if alg == Algorithm::RS256 {
        use rsa::pkcs1::DecodeRsaPrivateKey as _;
        use rsa::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _, LineEnding};
        let text = std::str::from_utf8(private).ok()?;
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(text)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(text))
            .ok()?;
        return key.to_public_key().to_public_key_pem(LineEnding::LF).ok();
    }
    let body: String = std::str::from_utf8(private)
        .ok()?
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = STANDARD.decode(body).ok()?;
    match alg {
        Algorithm::ES256 => {
            let rng = SystemRandom::new();
            let pair =
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
                    .ok()?;
            Some(spki(P256_SPKI_PREFIX, pair.public_key().as_ref()))
        }
        Algorithm::EdDSA => {
            let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).ok()?;
            Some(spki(ED25519_SPKI_PREFIX, pair.public_key().as_ref()))
        }
        _ => None,
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    let mut rest = body.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn spki(prefix: &[u8], key: &[u8]) -> String {
    let mut der = prefix.to_vec();
    der.extend_from_slice(key);
    pem("PUBLIC KEY", &der)
}

fn es256() -> Result<(String, String)> {
    let rng = SystemRandom::new();
    let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(alg, &rng).map_err(|_| anyhow!("key generation failed"))?;
    let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng)
        .map_err(|_| anyhow!("key generation failed"))?;
    Ok((
        pem("PRIVATE KEY", pkcs8.as_ref()),
        spki(P256_SPKI_PREFIX, pair.public_key().as_ref()),
    ))
}

fn eddsa() -> Result<(String, String)> {
    let rng = SystemRandom::new();
    let pkcs8 =
        Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| anyhow!("key generation failed"))?;
    let pair =
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| anyhow!("key generation failed"))?;
    Ok((
        pem("PRIVATE KEY", pkcs8.as_ref()),
        spki(ED25519_SPKI_PREFIX, pair.public_key().as_ref()),
    ))
}

fn rs256() -> Result<(String, String)> {
    use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut RingRng(SystemRandom::new()), 2048)
        .context("RSA key generation")?;
    let private = key
        .to_pkcs8_pem(LineEnding::LF)
        .context("encoding the RSA private key")?;
    let public = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .context("encoding the RSA public key")?;
    Ok((private.to_string(), public))
}

/// The operating system's randomness (through `ring`) for the `rsa` crate.
struct RingRng(SystemRandom);

impl rsa::rand_core::RngCore for RingRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // Fails only if the OS has no randomness: no key may be made then.
        if self.try_fill_bytes(dest).is_err() {
            std::process::abort();
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        use ring::rand::SecureRandom as _;
        self.0.fill(dest).map_err(|_| {
            rsa::rand_core::Error::from(
                std::num::NonZeroU32::new(rsa::rand_core::Error::CUSTOM_START)
                    .unwrap_or(std::num::NonZeroU32::MIN),
            )
        })
    }
}

impl rsa::rand_core::CryptoRng for RingRng {}

/// Writes a file that must not exist yet; a private key gets mode 0600.
fn write_new(path: &Path, content: &str, private: bool) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    use std::io::Write;
    f.write_all(content.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
