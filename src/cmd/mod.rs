//! One module per subcommand; each takes its parsed arguments and does the job.

pub mod decrypt_file;
pub mod demo;
pub mod doctor;
pub mod emulator;
pub mod generate;
pub mod get;
pub mod ls;
pub mod mount;
pub mod output;
