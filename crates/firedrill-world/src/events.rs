//! Discrete events: what the mechanics and operations did, as plain data. Log text is rendered from these only
//! when somebody reads the logs.

/// What happened. The meaning of an event's `a`, `b` and `c` fields is given per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum EventKind {
    /// A container was killed for exceeding its memory limit. a: working set MiB, b: limit MiB, c: restarts.
    OomKilled,
    /// A container is waiting before its next start. a: back-off seconds, c: restarts.
    CrashLoopBackOff,
    /// A container started. c: version index.
    ContainerStarted,
    /// A container became ready. a: start-up seconds.
    ContainerReady,
    /// A container exited right after start (bad build or configuration). c: version index.
    ContainerExited,
    /// A pod was stopped (restart, scale-down or rollout). c: version index.
    PodTerminated,
    /// A pod cannot be scheduled: cluster quota exhausted. a: CPU millicores requested, b: MiB requested.
    FailedScheduling,
    /// The autoscaler changed the desired replicas. a: from, b: to, c: CPU utilisation percent.
    Autoscaled,
    /// A rollout started. a: from version index, b: to version index.
    RolloutStarted,
    /// A rollout replaced its last replica. b: version index.
    RolloutFinished,
    /// A configuration key changed. c: change record index.
    ConfigChanged,
    /// A feature flag changed. c: change record index.
    FlagChanged,
    /// Replicas changed by hand. a: from, b: to.
    Scaled,
    /// Resource limits changed. a: memory MiB, b: CPU millicores.
    LimitsChanged,
    /// The service's pools are fully in use. a: in use, b: size, c: dependency id.
    PoolExhausted,
    /// Waits for a pooled connection timed out. a: timeouts per second, b: wait ms, c: dependency id.
    PoolTimeout,
    /// The volume crossed 90 % use. a: used GiB, b: size GiB.
    DiskPressure,
    /// The volume is full; writes fail. a: used GiB, b: size GiB.
    DiskFull,
    /// The served certificate expired. a: seconds past expiry.
    CertExpired,
    /// A renewed certificate was written to the secret.
    CertRenewed,
    /// Lock waits are long (databases). a: wait ms, c: id of the client holding locks longest.
    LockWaits,
    /// The network of the service was detached.
    NetworkDetached,
    /// The network of the service was reattached.
    NetworkReattached,
    /// A subscription matches no writer (QoS incompatible). c: topic index.
    QosIncompatible,
    /// A subscription's backlog is growing. a: depth, b: delivered per second, c: topic index.
    QueueBacklog,
    /// A subscription's backlog was purged. a: messages dropped, c: topic index.
    QueueDrained,
    /// The telemetry pipeline drops data. a: drop ratio.
    TelemetryDropping,
    /// Rate limiter rejecting traffic. a: rejected per second, b: limit per second.
    RateLimited,
    /// The CPU available to the service changed (noisy neighbour or throttling). a: share available.
    CpuThrottled,
    /// An external dependency degraded. a: error ratio.
    DependencyDegraded,
    /// Entry traffic changed. a: factor.
    TrafficShift,
}

/// One event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event {
    /// Simulated time, in ms since the world began.
    pub t_ms: i64,
    /// Service the event is about.
    pub service: u16,
    /// Replica slot (`u8::MAX` for the service as a whole).
    pub replica: u8,
    /// What happened.
    pub kind: EventKind,
    /// First argument (see [`EventKind`]).
    pub a: f32,
    /// Second argument.
    pub b: f32,
    /// Third argument.
    pub c: u32,
}

/// A bounded event log, allocated once; the oldest events are dropped when it is full.
#[derive(Debug)]
pub struct EventLog {
    events: Vec<Event>,
    capacity: usize,
    /// Index of the oldest event once the log has wrapped.
    head: usize,
    dropped: u64,
}

impl Clone for EventLog {
    // Keeps the capacity so a forked world does not allocate when it logs.
    fn clone(&self) -> Self {
        let mut events = Vec::with_capacity(self.capacity);
        events.extend_from_slice(&self.events);
        EventLog {
            events,
            capacity: self.capacity,
            head: self.head,
            dropped: self.dropped,
        }
    }
}

impl EventLog {
    /// An empty log holding at most `capacity` events.
    pub fn new(capacity: usize) -> EventLog {
        let capacity = capacity.max(1);
        EventLog {
            events: Vec::with_capacity(capacity),
            capacity,
            head: 0,
            dropped: 0,
        }
    }

    /// Appends an event.
    pub fn push(&mut self, event: Event) {
        if self.events.len() < self.capacity {
            self.events.push(event);
        } else {
            self.events[self.head] = event;
            self.head = (self.head + 1) % self.capacity;
            self.dropped += 1;
        }
    }

    /// Events in time order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Event> + '_ {
        let (a, b) = self.events.split_at(self.head);
        b.iter().chain(a.iter())
    }

    /// Number held.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// How many were dropped for lack of room.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: i64) -> Event {
        Event {
            t_ms: t,
            service: 0,
            replica: 0,
            kind: EventKind::Scaled,
            a: 0.0,
            b: 0.0,
            c: 0,
        }
    }

    #[test]
    fn wraps_in_order() {
        let mut log = EventLog::new(3);
        for t in 0..5 {
            log.push(ev(t));
        }
        let ts: Vec<i64> = log.iter().map(|e| e.t_ms).collect();
        assert_eq!(ts, vec![2, 3, 4]);
        assert_eq!(log.dropped(), 2);
    }
}
