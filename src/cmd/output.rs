//! Where commands write plaintext: standard output, or a file that appears under its
//! final name only once it is complete (temporary file in the same directory + rename),
//! so that a failure never leaves a partial file behind under that name.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

pub enum Output {
    Stdout(BufWriter<std::io::Stdout>),
    File {
        temp: BufWriter<tempfile::NamedTempFile>,
        dest: PathBuf,
    },
}

impl Output {
    /// `-` is standard output; anything else a file created atomically.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        if path.as_os_str() == "-" {
            return Ok(Self::Stdout(BufWriter::with_capacity(
                1 << 20,
                std::io::stdout(),
            )));
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .with_context(|| format!("{} is not a file name", path.display()))?;
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{}.", name.to_string_lossy()))
            .suffix(".partial")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        Ok(Self::File {
            temp: BufWriter::with_capacity(1 << 20, temp),
            dest: path.to_owned(),
        })
    }

    pub fn write_all(&mut self, data: &[u8]) -> anyhow::Result<()> {
        match self {
            Self::Stdout(w) => w.write_all(data).context("cannot write to standard output"),
            Self::File { temp, dest } => temp
                .write_all(data)
                .with_context(|| format!("cannot write {}", dest.display())),
        }
    }

    /// Flushes and, for a file, renames it to its final name. Dropping an `Output`
    /// without calling this deletes the temporary file.
    pub fn commit(self) -> anyhow::Result<()> {
        match self {
            Self::Stdout(mut w) => w.flush().context("cannot write to standard output"),
            Self::File { temp, dest } => {
                let temp = temp
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .with_context(|| format!("cannot write {}", dest.display()))?;
                temp.as_file()
                    .sync_all()
                    .with_context(|| format!("cannot write {}", dest.display()))?;
                temp.persist(&dest).map_err(|e| e.error).with_context(|| {
                    format!("cannot rename the finished file to {}", dest.display())
                })?;
                Ok(())
            }
        }
    }
}
