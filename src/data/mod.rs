//! Datasets on disk: COCO annotation files as RoboFlow and GLIP write them.
pub mod coco;
pub mod normalize;
pub mod validate;
