//! Running a `credential_process` command (the one place this crate spawns, at the edge)

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::{Duration, Instant};

use crate::credentials::{ProcessCommand, ProcessOutput};

/// The process groups of the commands running now (each the id of its shell), for
/// [`kill_running_processes`]
static RUNNING: Mutex<Running> = Mutex::new(Running {
    groups: Vec::new(),
    starting: 0,
    closed: false,
});

/// Signalled when a command that was starting is in [`RUNNING`] (or failed to start)
static STARTED: Condvar = Condvar::new();

/// How long [`kill_running_processes`] waits for the commands starting at that instant
const START_WAIT: Duration = Duration::from_secs(5);

struct Running {
    groups: Vec<u32>,
    /// Commands being spawned now, not yet in `groups`
    starting: usize,
    /// Set by [`kill_running_processes`]: no command starts after it
    closed: bool,
}

fn running() -> MutexGuard<'static, Running> {
    RUNNING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Kills, on Unix, every process of group `pgid` (a command's shell and what it started)
fn kill_pgid(pgid: u32) {
    #[cfg(unix)]
    {
        // the shell's own `kill` (POSIX), so no `kill` program need be installed
        let _ = Command::new("sh")
            .args(["-c", "kill -s KILL -- \"-$1\"", "sh", &pgid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    #[cfg(not(unix))]
    let _ = pgid;
}

/// Kills the child and, on Unix, every process of its group (what the shell started)
fn kill_group(child: &mut std::process::Child) {
    // the group id is the child's pid (`process_group(0)`)
    kill_pgid(child.id());
    let _ = child.kill();
}

/// Kills every `credential_process` command running now in this process (on Unix with its
/// whole process group), for a program about to exit early, on Ctrl-C say
///
/// A command runs in its own process group, so the terminal's Ctrl-C does not reach it, and
/// its timeout is kept by the thread waiting for it, which ends with the program: without
/// this, a command waiting for a login could outlive the program.
///
/// A command being started at that instant is waited for (a few seconds at most) and killed
/// too, and none starts after it ([`run_process`] then fails): none outlives the program.
pub fn kill_running_processes() {
    let groups = {
        let mut running = running();
        running.closed = true;
        let (mut running, _) = STARTED
            .wait_timeout_while(running, START_WAIT, |r| r.starting > 0)
            .unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut running.groups)
    };
    for pgid in groups {
        kill_pgid(pgid);
    }
}

/// A command about to be spawned: counted in [`RUNNING`] until it is in its list
struct Starting {
    /// The spawned command's process group, listed when this is dropped
    pgid: Option<u32>,
}

impl Starting {
    /// `None` after [`kill_running_processes`]
    fn new() -> Option<Self> {
        let mut running = running();
        if running.closed {
            return None;
        }
        running.starting += 1;
        Some(Self { pgid: None })
    }

    /// Puts the spawned command's process group in the list, for as long as it lives
    fn started(mut self, pgid: u32) -> Registered {
        self.pgid = Some(pgid);
        Registered(pgid)
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        // listed and no longer counted at once
        let mut running = running();
        running.groups.extend(self.pgid);
        running.starting -= 1;
        drop(running);
        STARTED.notify_all();
    }
}

/// Keeps a command's process group in [`RUNNING`] while it lives
struct Registered(u32);

impl Drop for Registered {
    fn drop(&mut self) {
        running().groups.retain(|&p| p != self.0);
    }
}

/// Runs `cmd` through the shell (`sh -c`, or `cmd /C` on Windows) with no stdin, keeping at
/// most `max_output` bytes of each output stream and killing it after `timeout`
///
/// On Unix the command runs in its own process group, and the whole group is killed at the
/// timeout, so a shell's children do not outlive it.
///
/// # Errors
///
/// A message when it cannot be started (or is not, after [`kill_running_processes`]) or runs
/// past its timeout.
pub fn run_process(cmd: &ProcessCommand) -> Result<ProcessOutput, String> {
    run_process_until(cmd, &AtomicBool::new(false))
}

/// As [`run_process`], and the command (with its process group) is also killed as soon as
/// `stop` is set: for a caller that may give up waiting first (an async client whose
/// invocation was cancelled or passed its deadline sets it from a drop guard)
///
/// # Errors
///
/// As [`run_process`], and a message when it was stopped (or `stop` was set before it
/// started: it is then not started at all).
pub fn run_process_until(cmd: &ProcessCommand, stop: &AtomicBool) -> Result<ProcessOutput, String> {
    let stopped = || Err("the command was stopped: its caller gave up waiting".to_owned());
    if stop.load(Ordering::Relaxed) {
        return stopped();
    }
    let mut command = if cfg!(windows) {
        let mut c = Command::new("cmd");
        c.arg("/C").arg(&cmd.command);
        c
    } else {
        let mut c = Command::new("sh");
        c.arg("-c").arg(&cmd.command);
        c
    };
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let Some(starting) = Starting::new() else {
        return Err("the command was not started: the program is exiting".to_owned());
    };
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start `sh`: {e}"))?;
    let _registered = starting.started(child.id());
    let limit = cmd.max_output as u64;
    // each stream's bytes so far, and word when it ended: a process the command left
    // running in the background may hold the stream open after the command exited, and what
    // the command wrote is kept all the same
    let reader = |stream: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = mpsc::channel();
        let read = Arc::new(Mutex::new(Vec::new()));
        if let Some(stream) = stream {
            let read = Arc::clone(&read);
            std::thread::spawn(move || {
                let mut s = stream.take(limit);
                let mut chunk = [0u8; 8192];
                while let Ok(n @ 1..) = s.read(&mut chunk) {
                    read.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend_from_slice(&chunk[..n]);
                }
                // drain the rest so the child never blocks on a full pipe
                let _ = std::io::copy(&mut s.into_inner(), &mut std::io::sink());
                let _ = tx.send(());
            });
        } else {
            let _ = tx.send(());
        }
        move |grace: Duration| {
            let _ = rx.recv_timeout(grace);
            std::mem::take(&mut *read.lock().unwrap_or_else(PoisonError::into_inner))
        }
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + cmd.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                kill_group(&mut child);
                let _ = child.wait();
                return Err(format!(
                    "the command ran longer than {:?} and was killed",
                    cmd.timeout
                ));
            }
            Ok(None) if stop.load(Ordering::Relaxed) => {
                kill_group(&mut child);
                let _ = child.wait();
                return stopped();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("waiting for the command failed: {e}")),
        }
    };
    let grace = Duration::from_secs(1);
    Ok(ProcessOutput {
        success: status.success(),
        status: status.to_string(),
        stdout: out(grace),
        stderr: err(grace),
    })
}

#[cfg(all(test, unix))]
mod tests {
    use std::process::Command;
    use std::time::Duration;

    use super::{RUNNING, Starting, kill_running_processes, run_process};
    use crate::credentials::ProcessCommand;
    use crate::testing::wait_for;

    fn command(line: &str) -> ProcessCommand {
        ProcessCommand {
            command: line.to_owned(),
            timeout: Duration::from_secs(120),
            max_output: 1024,
        }
    }

    fn running() -> usize {
        RUNNING.lock().unwrap().groups.len()
    }

    fn starting() -> usize {
        RUNNING.lock().unwrap().starting
    }

    /// The only test here that runs commands: `RUNNING` is the process's (and no command
    /// runs after [`kill_running_processes`])
    #[test]
    fn running_commands_are_listed_and_killed_on_request() {
        let done = run_process(&command("echo hi")).unwrap();
        assert_eq!(done.stdout, b"hi\n");
        assert_eq!(running(), 0, "a finished command is no longer listed");
        // a timeout far past the kill, which still ends it if the kill does not
        let waiting = std::thread::spawn(|| {
            run_process(&ProcessCommand {
                timeout: Duration::from_secs(30),
                ..command("sleep 100; echo late")
            })
        });
        wait_for("listed", || running() > 0);
        // and one caught between its spawn and its listing, as `run_process` spawns it
        let starting_now = Starting::new().unwrap();
        assert_eq!(starting(), 1);
        let mut spawned = Command::new("sh");
        std::os::unix::process::CommandExt::process_group(&mut spawned, 0);
        let mut spawned = spawned.args(["-c", "sleep 20"]).spawn().unwrap();
        let killer = std::thread::spawn(kill_running_processes);
        wait_for("closed", || RUNNING.lock().unwrap().closed);
        let listed = starting_now.started(spawned.id());
        killer.join().unwrap();
        assert_eq!(running(), 0);
        // killed by the request, not by its timeout: it ends with a signal, without output
        let out = waiting.join().unwrap().unwrap();
        assert!(!out.success && out.status.contains("signal"), "{out:?}");
        assert!(out.stdout.is_empty());
        // the kill waited for the one starting: killed too, not left to run its 20 s
        let status = spawned.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "{status}"
        );
        drop(listed);
        // none starts later
        let e = run_process(&command("echo late")).unwrap_err();
        assert!(e.contains("not started"), "{e}");
        assert_eq!((running(), starting()), (0, 0));
    }
}
