//! Table tests of the application layer.
