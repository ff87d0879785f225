//! Tributary domain logic (see ARCHITECTURE.md). Pure: no I/O.
