//! SIGINT and SIGTERM: the running command is cancelled, so the guards of its locks drop and
//! the process gives its leases back before it exits (I3), with the conventional status
//! 128 + the signal's number.

/// A signal that asks the process to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// SIGINT (Ctrl-C).
    Int,
    /// SIGTERM (`kill`, a service manager stopping us).
    Term,
}

impl Interrupt {
    /// The signal's name.
    pub fn name(self) -> &'static str {
        match self {
            Interrupt::Int => "SIGINT",
            Interrupt::Term => "SIGTERM",
        }
    }

    /// The exit status a shell expects of a process ended by this signal: 128 + its number.
    pub fn exit_code(self) -> u8 {
        match self {
            Interrupt::Int => 130,
            Interrupt::Term => 143,
        }
    }
}

/// SIGINT and SIGTERM, listened to from the moment [`Signals::install`] runs, so a signal
/// that arrives while the app is being wired is kept until the command can be cancelled.
#[derive(Debug)]
pub struct Signals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Starts listening; must run inside the runtime. A signal that cannot be listened to is
    /// reported and keeps its default action (the process ends without releasing leases,
    /// which then expire).
    pub fn install() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!("cannot handle {name}: {e}");
                    None
                }
            };
            Signals {
                int: listen(SignalKind::interrupt(), "SIGINT"),
                term: listen(SignalKind::terminate(), "SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// Waits for the first signal.
    pub async fn recv(mut self) -> Interrupt {
        #[cfg(unix)]
        {
            tokio::select! {
                () = next(&mut self.int) => Interrupt::Int,
                () = next(&mut self.term) => Interrupt::Term,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            match tokio::signal::ctrl_c().await {
                Ok(()) => Interrupt::Int,
                Err(_) => std::future::pending().await,
            }
        }
    }
}

/// The next delivery of a signal; never, if it is not listened to.
#[cfg(unix)]
async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
    if let Some(s) = signal
        && s.recv().await.is_some()
    {
        return;
    }
    std::future::pending().await
}
