// The C BLAS interface (OpenBLAS on Linux). Only Sources/CharLM/BLAS.swift imports this module.
#include <cblas.h>
