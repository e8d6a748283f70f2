//! Events and the reporters that render them.
