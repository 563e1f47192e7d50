"""The Helm chart, the rendered manifests, the CRD files and the node's nftables file."""
