//! A bounded queue that drops its *oldest* entry when full.
//!
//! In front of a slow or unreachable neighbour the newest message is the one worth keeping: an old
//! heartbeat or an old election round says less than the latest one. The producer never waits.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

#[derive(Debug)]
pub struct DropOldestQueue<T> {
    items: Mutex<VecDeque<T>>,
    capacity: usize,
    ready: Notify,
    closed: AtomicBool,
}

impl<T> DropOldestQueue<T> {
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "a queue needs room for one item");
        Self {
            items: Mutex::new(VecDeque::with_capacity(capacity.min(64))),
            capacity,
            ready: Notify::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// Appends `item`; answers the item that was dropped to make room, if any.
    pub fn push(&self, item: T) -> Option<T> {
        let dropped = {
            let mut items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
            let dropped = if items.len() >= self.capacity {
                items.pop_front()
            } else {
                None
            };
            items.push_back(item);
            dropped
        };
        self.ready.notify_one();
        dropped
    }

    /// Waits for the next item; `None` once the queue is closed and empty.
    pub async fn pop(&self) -> Option<T> {
        loop {
            if let Some(item) = self
                .items
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop_front()
            {
                return Some(item);
            }
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            // `notify_one` leaves a permit when nobody waits, so a push between the check above and
            // this await is not lost.
            self.ready.notified().await;
        }
    }

    /// Removes everything queued; answers how many items were dropped.
    pub fn clear(&self) -> usize {
        let mut items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        let count = items.len();
        items.clear();
        count
    }

    /// Wakes the consumer for good: `pop` answers `None` once the queue is empty.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.ready.notify_one();
    }

    pub fn len(&self) -> usize {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_drops_its_oldest_item() {
        let queue = DropOldestQueue::new(2);
        assert_eq!(queue.push(1), None);
        assert_eq!(queue.push(2), None);
        assert_eq!(queue.push(3), Some(1));
        assert_eq!(queue.pop().await, Some(2));
        assert_eq!(queue.pop().await, Some(3));
        assert!(queue.is_empty());
    }

    #[tokio::test]
    async fn a_waiting_consumer_is_woken_by_a_push_and_by_close() {
        let queue = std::sync::Arc::new(DropOldestQueue::new(4));
        let consumer = tokio::spawn({
            let queue = queue.clone();
            async move { (queue.pop().await, queue.pop().await) }
        });
        tokio::task::yield_now().await;
        queue.push("hello");
        tokio::task::yield_now().await;
        queue.close();
        assert_eq!(consumer.await.unwrap(), (Some("hello"), None));
    }

    #[test]
    fn clear_counts_what_it_dropped() {
        let queue = DropOldestQueue::new(8);
        for n in 0..5 {
            queue.push(n);
        }
        assert_eq!(queue.clear(), 5);
        assert_eq!(queue.len(), 0);
    }
}
