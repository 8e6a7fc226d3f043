"""File contracts: dataset manifests, HDF5 stores, masks, label maps, COCO JSON."""
