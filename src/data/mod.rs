//! Datasets. For now: CIFAR in its official binary layout.

mod cifar;

pub use cifar::{read_cifar_records, CifarSet, CIFAR10_MEAN, CIFAR10_STD};
