pub mod emulate;
pub mod extract;
