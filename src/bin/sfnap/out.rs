//! The command line's results on standard output. A reader that goes away
//! (`sfnap train --dry-run | head -1`) ends the command quietly, with status 0,
//! as a Unix tool does, instead of a panic on the closed pipe.

/// Prints a line to standard output, like `println!`, but through [`line`].
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}
pub(crate) use say;

/// Writes `args` and a newline to standard output; a closed pipe ends the
/// process with status 0, any other failure with status 1.
pub fn line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: standard output: {e}");
        std::process::exit(1);
    }
}
