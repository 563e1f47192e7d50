"""The code that runs inside the sandbox image: standard library only (an import contract in
operator/pyproject.toml holds it to that), copied whole into the image (sandbox-images/Dockerfile).

runner    runs one argv under limits and reports it        prepare    validates and copies the source
tree      validates a source tree                          digest     the content digest of a tree
gitconfig neutralises the copy's git directories           preflight  proves the Pod's egress filtered
canary    the egress canary's two ports                    contract   the wire format operator <-> Pod
"""
