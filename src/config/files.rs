//! Reading the files a configuration names — the configuration itself, OPML lists, and
//! the secrets, header values and API token kept in files — within a size limit.
//!
//! Any of them could be a mistake or an attack: `secret_file = "/dev/zero"` once made
//! `check` allocate gigabytes, and a FIFO would block start-up for ever. Only regular
//! files are read, never more than the limit for their kind, with an error that names
//! the file and the limit. The file's permission bits come back too, so a secret that
//! others can read draws a warning.

use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

/// The configuration file: 100,000 `[[feeds]]` entries take about 12 MB.
pub(super) const MAX_CONFIG_BYTES: u64 = 64 << 20;
/// An OPML file: 100,000 outlines take about 15 MB.
pub(super) const MAX_OPML_BYTES: u64 = 64 << 20;
/// A secret, a header value or the API token.
pub(super) const MAX_SECRET_BYTES: u64 = 64 << 10;

/// A file's bytes and its permission bits.
pub(super) struct Contents {
    pub bytes: Vec<u8>,
    pub mode: u32,
}

impl Contents {
    /// Whether anyone but the owner may read the file.
    pub fn readable_by_others(&self) -> bool {
        self.mode & 0o077 != 0
    }
}

/// Reads a regular file of at most `limit` bytes. The error says why, without the path
/// (callers put the path and the setting in front).
pub(super) fn read_limited(path: &Path, limit: u64) -> Result<Contents, String> {
    // `metadata` follows symlinks (a systemd credential may be one) and does not open the
    // file, so a FIFO cannot block here.
    let metadata = std::fs::metadata(path).map_err(|err| err.to_string())?;
    if !metadata.is_file() {
        return Err("it is not a regular file".into());
    }
    let too_large = || format!("it is larger than {}", size(limit));
    if metadata.len() > limit {
        return Err(too_large());
    }
    let file = File::open(path).map_err(|err| err.to_string())?;
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    // One byte past the limit tells a file that grew since `metadata` from one that fits.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| err.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(Contents {
        bytes,
        mode: metadata.permissions().mode() & 0o7777,
    })
}

/// A limit for a message: "64 KiB", "64 MiB".
fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_a_directory_and_a_fifo_are_refused_without_reading_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        for path in [Path::new("/dev/zero"), dir.path(), fifo.as_path()] {
            match read_limited(path, MAX_SECRET_BYTES) {
                Err(why) => assert_eq!(why, "it is not a regular file", "{}", path.display()),
                Ok(_) => panic!("{} was read", path.display()),
            }
        }
    }

    #[test]
    fn a_file_past_the_limit_is_refused_and_one_within_it_is_read_with_its_mode() {
        let dir = tempfile::tempdir().expect("temp dir");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; (MAX_SECRET_BYTES + 1) as usize]).expect("write");
        assert_eq!(
            read_limited(&big, MAX_SECRET_BYTES).err().as_deref(),
            Some("it is larger than 64 KiB")
        );
        let small = dir.path().join("small");
        std::fs::write(&small, b"whsec_x\n").expect("write");
        std::fs::set_permissions(&small, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let read = read_limited(&small, MAX_SECRET_BYTES).expect("read");
        assert_eq!(read.bytes, b"whsec_x\n");
        assert_eq!(read.mode, 0o640);
        assert!(read.readable_by_others());
        std::fs::set_permissions(&small, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(
            !read_limited(&small, MAX_SECRET_BYTES)
                .expect("read")
                .readable_by_others()
        );
    }
}
