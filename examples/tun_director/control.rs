//! The control socket: a Unix stream socket that takes one command a line (ipvsadm rule
//! lines such as `-e -t 10.0.2.100:80 -r 10.0.1.13:80 -m -w 0`, or `list`, `counters`,
//! `quit`) and answers each with `ok`, `error: ...` or the text asked for. The datapath
//! thread applies the commands; this thread only carries them over.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, mpsc};
use std::{fs, io, thread};

use tun_rs::InterruptEvent;

/// One command line and where to send its answer.
pub struct Request {
    /// The line, trimmed.
    pub line: String,
    /// The answer channel.
    pub reply: mpsc::Sender<String>,
}

/// Listens on `path` (replacing a stale socket there) and forwards every line to `tx`,
/// waking the datapath through `wake`.
pub fn spawn(path: &Path, tx: mpsc::Sender<Request>, wake: Arc<InterruptEvent>) -> io::Result<()> {
    if let Ok(m) = fs::symlink_metadata(path) {
        if !m.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(s) => {
                        if let Err(e) = serve(s, &tx, &wake) {
                            eprintln!("control: {e}");
                        }
                    }
                    Err(e) => eprintln!("control: accept: {e}"),
                }
            }
        })?;
    Ok(())
}

fn serve(s: UnixStream, tx: &mpsc::Sender<Request>, wake: &InterruptEvent) -> io::Result<()> {
    let mut out = s.try_clone()?;
    for line in BufReader::new(s).lines() {
        let line = line?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (reply, answer) = mpsc::channel();
        let req = Request {
            line: line.to_owned(),
            reply,
        };
        if tx.send(req).is_err() {
            return Err(io::Error::other("datapath has stopped"));
        }
        wake.trigger()?;
        let text = answer
            .recv()
            .unwrap_or_else(|_| "error: datapath has stopped".to_owned());
        out.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}

/// `tun_director ctl SOCKET COMMAND...`: sends one command, prints the answer; exit
/// status 1 if the answer is an error.
pub fn client(args: &[String]) -> ExitCode {
    let [path, cmd @ ..] = args else {
        eprintln!("usage: tun_director ctl SOCKET COMMAND...");
        return ExitCode::from(2);
    };
    let run = || -> io::Result<String> {
        let mut s = UnixStream::connect(path)?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        s.write_all(format!("{}\n", cmd.join(" ")).as_bytes())?;
        s.shutdown(std::net::Shutdown::Write)?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        Ok(answer)
    };
    match run() {
        Ok(a) => {
            print!("{a}");
            if a.starts_with("error") || a.is_empty() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("tun_director ctl {path}: {e}");
            ExitCode::FAILURE
        }
    }
}
