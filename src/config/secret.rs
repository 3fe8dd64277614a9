//! The pepper file: the secret key of the keyed hashes.
//!
//! The file contains the pepper as hex text (64 hex digits for the generated
//! 32 bytes), optionally followed by a newline. Hex keeps the file printable,
//! so it can be copied between nodes and checked by eye. Every node that
//! shares a store must use the same pepper, or no hash will match.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};

use crate::verify::keyed_hash::MIN_PEPPER_LEN;

/// Error from reading or creating the pepper file.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file exists but cannot be read.
    #[error("failed to read pepper file {path}: {source}")]
    Read {
        /// Pepper file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A new file cannot be written.
    #[error("failed to write pepper file {path}: {source}; check that the directory is writable")]
    Write {
        /// Pepper file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not hex text.
    #[error("pepper file {path} is not hex text; write the pepper as hex digits, such as the output of `openssl rand -hex 32`")]
    NotHex {
        /// Pepper file.
        path: PathBuf,
    },
    /// The pepper is shorter than 32 bytes.
    #[error("pepper in {path} is {actual} bytes, but at least {MIN_PEPPER_LEN} are required; write a longer one, such as the output of `openssl rand -hex 32`")]
    TooShort {
        /// Pepper file.
        path: PathBuf,
        /// Length found, in bytes.
        actual: usize,
    },
    /// Group or others may read the file.
    #[error("pepper file {path} has mode {mode:o}, which lets other users read it; run `chmod 600` on it")]
    Permissions {
        /// Pepper file.
        path: PathBuf,
        /// Permission bits found.
        mode: u32,
    },
    /// The system random number generator failed.
    #[error("system random number generator failed")]
    Random,
}

/// Loads the pepper from `path`, or generates 32 random bytes from the system
/// random number generator and writes them there with mode 0600 when the file
/// is missing. The boolean is true when the file was created, so the caller
/// can warn that hashes made with an earlier pepper no longer match.
///
/// An existing file that group or others can read is rejected.
pub fn load_or_create_pepper(path: &Path) -> Result<(Vec<u8>, bool), SecretError> {
    match fs::metadata(path) {
        Ok(metadata) => {
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(SecretError::Permissions {
                    path: path.to_path_buf(),
                    mode,
                });
            }
            let text = fs::read_to_string(path).map_err(|source| SecretError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            Ok((decode_pepper(&text, path)?, false))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Ok((create_pepper_file(path)?, true))
        }
        Err(source) => Err(SecretError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn decode_pepper(text: &str, path: &Path) -> Result<Vec<u8>, SecretError> {
    let hex = text.trim();
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SecretError::NotHex {
            path: path.to_path_buf(),
        });
    }

    let pepper: Vec<u8> = hex
        .as_bytes()
        .chunks_exact(2)
        .filter_map(|pair| {
            let high = char::from(*pair.first()?).to_digit(16)?;
            let low = char::from(*pair.get(1)?).to_digit(16)?;
            // Both digits are below 16, so the value fits in a byte.
            Some((high * 16 + low) as u8)
        })
        .collect();

    if pepper.len() < MIN_PEPPER_LEN {
        return Err(SecretError::TooShort {
            path: path.to_path_buf(),
            actual: pepper.len(),
        });
    }
    Ok(pepper)
}

/// Writes a new random pepper. `create_new` makes this fail instead of
/// overwriting a file that another process created in the meantime.
fn create_pepper_file(path: &Path) -> Result<Vec<u8>, SecretError> {
    let mut pepper = vec![0u8; MIN_PEPPER_LEN];
    SystemRandom::new()
        .fill(&mut pepper)
        .map_err(|_| SecretError::Random)?;
    let hex: String = pepper.iter().map(|byte| format!("{byte:02x}")).collect();

    let write_error = |source| SecretError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(write_error)?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(write_error)?;
    file.write_all(format!("{hex}\n").as_bytes())
        .map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    Ok(pepper)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pepper_created_then_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("var/pepper");

        let (created_pepper, created) = load_or_create_pepper(&path).unwrap();
        assert!(created);
        assert_eq!(created_pepper.len(), 32);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let (loaded, created) = load_or_create_pepper(&path).unwrap();
        assert!(!created);
        assert_eq!(loaded, created_pepper);
    }

    #[test]
    fn pepper_file_is_hex() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pepper");
        let (pepper, _) = load_or_create_pepper(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let expected: String = pepper.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(text, format!("{expected}\n"));
    }

    #[test]
    fn operator_pepper_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pepper");
        let hex = "00ff".repeat(20);
        write_private(&path, &format!("  {hex}\n\n"));
        let (pepper, created) = load_or_create_pepper(&path).unwrap();
        assert!(!created);
        assert_eq!(pepper.len(), 40);
        assert_eq!(pepper[0..2], [0x00, 0xff]);
    }

    #[test]
    fn short_pepper_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pepper");
        write_private(&path, &"ab".repeat(31));
        let result = load_or_create_pepper(&path);
        assert!(matches!(
            result,
            Err(SecretError::TooShort { actual: 31, .. })
        ));
    }

    #[test]
    fn non_hex_pepper_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pepper");
        for text in [
            "zz".repeat(32),
            format!("0x{}", "ab".repeat(32)),
            "abc".repeat(21),
            "ab cd".repeat(16),
        ] {
            write_private(&path, &text);
            let result = load_or_create_pepper(&path);
            assert!(matches!(result, Err(SecretError::NotHex { .. })), "{text}");
        }
    }

    #[test]
    fn readable_pepper_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pepper");
        fs::write(&path, "ab".repeat(32)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let result = load_or_create_pepper(&path);
        assert!(matches!(
            result,
            Err(SecretError::Permissions { mode: 0o644, .. })
        ));
    }

    fn write_private(path: &Path, text: &str) {
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    }
}
