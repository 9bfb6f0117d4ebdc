//! Explicit budgets for one pickle. Crossing one stops that pickle with an anomaly; nothing
//! the input claims is ever allocated up front.

/// Budgets for the symbolic machine and the stream reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Instructions executed per pickle.
    pub max_ops: u64,
    /// Values on the stack at once.
    pub max_stack: usize,
    /// Open MARKs at once.
    pub max_marks: usize,
    /// Memo entries.
    pub max_memo: usize,
    /// Values (strings, containers, calls, globals) the machine keeps per pickle.
    pub max_nodes: usize,
    /// Items kept per container (more are counted, not kept).
    pub max_container_items: usize,
    /// Longest operand held whole; longer ones keep only a head and are skipped.
    pub max_inline: usize,
    /// Total string and bytes held per pickle; past it only heads are kept.
    pub max_string_bytes: usize,
    /// Nested pickles (inside bytes constants, joblib object arrays) scanned below this one.
    pub max_nested_depth: u32,
    /// Approximate memory the machine may hold for one pickle (values, events, memo, strings):
    /// keeps peak memory bounded whatever mix of objects a pickle builds.
    pub max_memory: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_ops: 50_000_000,
            max_stack: 1_000_000,
            max_marks: 100_000,
            max_memo: 1_000_000,
            max_nodes: 1_000_000,
            max_container_items: 4096,
            max_inline: 1 << 20,
            max_string_bytes: 16 << 20,
            max_nested_depth: 4,
            max_memory: 48 << 20,
        }
    }
}

/// Which budget was crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// [`Limits::max_ops`].
    Ops,
    /// [`Limits::max_stack`].
    Stack,
    /// [`Limits::max_marks`].
    Marks,
    /// [`Limits::max_memo`].
    Memo,
    /// [`Limits::max_nodes`].
    Nodes,
    /// [`Limits::max_memory`].
    Memory,
}

impl LimitKind {
    /// A short description.
    pub fn describe(self) -> &'static str {
        match self {
            LimitKind::Ops => "instruction count",
            LimitKind::Stack => "stack depth",
            LimitKind::Marks => "MARK nesting",
            LimitKind::Memo => "memo size",
            LimitKind::Nodes => "value count",
            LimitKind::Memory => "memory",
        }
    }
}
