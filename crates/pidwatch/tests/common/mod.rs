//! Helpers shared by the integration tests.

use std::sync::mpsc;
use std::thread::JoinHandle;

/// Starts a thread in this process that exits on request, and returns its
/// TID, the sender that ends it, and its handle.
pub fn start_thread() -> (u32, mpsc::Sender<()>, JoinHandle<()>) {
    let (tid_sender, tid_receiver) = mpsc::channel();
    let (stop, stopped) = mpsc::channel::<()>();
    let handle = std::thread::spawn(move || {
        let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
        tid_sender.send(tid).unwrap();
        let _ = stopped.recv();
    });
    (tid_receiver.recv().unwrap(), stop, handle)
}
