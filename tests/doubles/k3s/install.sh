#!/bin/sh
# TEST DOUBLE of the k3s install script (placeholder).
echo "k3s install double: not implemented yet" >&2
exit 1
