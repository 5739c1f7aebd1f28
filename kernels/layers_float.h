/*
kernels/layers_float.h — kernels/layers.h's reference layers over float, instantiated once per
program (the trainers, the inference path, the tools). The tests add a double instantiation with
`#define real double` / `#define LAYER_FN(name) name##_f64` around a second include of layers.h.
*/
#ifndef KERNELS_LAYERS_FLOAT_H
#define KERNELS_LAYERS_FLOAT_H
#define real float
#define LAYER_FN(name) name
#include "layers.h"
#undef real
#undef LAYER_FN
#endif // KERNELS_LAYERS_FLOAT_H
