//! [`EventSource`]: where the committed writes a node learns of come from, for whoever shows them live
//! (the web layer's event hub). The writer's service and the data plane both provide one, so neither
//! depends on the web layer.

use tokio::sync::broadcast;

use crate::storage::LogEntry;

use super::LocalService;
use super::ephemeral::EphemeralEvent;

/// Where committed writes come from: the writer's log broadcast on the writer, the data plane's event
/// broadcast on other input nodes. `None` while there is none yet; the hub asks again every second.
pub trait EventSource: Send + Sync + 'static {
    /// Every committed write from now on, in epoch order.
    fn subscribe(&self) -> Option<broadcast::Receiver<LogEntry>>;

    /// Every ephemeral group's event from now on (`None`: no ephemeral groups here).
    fn subscribe_ephemeral(&self) -> Option<broadcast::Receiver<EphemeralEvent>> {
        None
    }
}

impl EventSource for LocalService {
    fn subscribe(&self) -> Option<broadcast::Receiver<LogEntry>> {
        LocalService::subscribe(self)
    }

    fn subscribe_ephemeral(&self) -> Option<broadcast::Receiver<EphemeralEvent>> {
        LocalService::subscribe_ephemeral(self)
    }
}

impl EventSource for broadcast::Sender<LogEntry> {
    fn subscribe(&self) -> Option<broadcast::Receiver<LogEntry>> {
        Some(broadcast::Sender::subscribe(self))
    }
}
