//! Vector and rejection tests.
