# Only here because C extensions cannot yet be declared in pyproject.toml alone.
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "shared.ipld._commp",
            sources=["shared/ipld/_commp.c"],
            depends=["shared/ipld/sha256_common.h"],
            # SHA-NI code is compiled per function (target attribute) and chosen at run time,
            # so the module stays portable to CPUs without it.
            extra_compile_args=["-O3", "-std=c11"],
        ),
        # The per-file path of packing small files (open, checks, read, CID, CAR frame) by batch.
        Extension("shared.ipld._smallfiles", sources=["shared/ipld/_smallfiles.c"],
                  depends=["shared/ipld/sha256_common.h"],
                  extra_compile_args=["-O3", "-std=c11"]),
    ],
)
