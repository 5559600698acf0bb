// kernels/cuda/graph.cu — CUDA graphs for the op API (kernels/ops.h ops_graph_*): capture the ops
// issued on a context's stream, instantiate them once, replay them with one launch. The engine
// captures its decode step per batch size (model/infer.c), so a step costs one launch instead of one
// per op.
// defines: graph_begin_cuda, graph_end_cuda, graph_launch_cuda, graph_free_cuda
#include <cuda_runtime.h>

extern "C" {
#include "base/common.h"
}
#include "kernels/cuda/ops_cuda.h"

extern "C" int graph_begin_cuda(cudaStream_t st) {
    // thread-local mode: a CUDA call of another thread (the reward workers, the HTTP threads) that is
    // not capture-safe does not invalidate this capture
    cudaError_t e = cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal);
    return e == cudaSuccess ? 0 : cispo_fail("graph_begin_cuda: %s", cudaGetErrorString(e));
}

extern "C" void *graph_end_cuda(cudaStream_t st) {
    cudaGraph_t g = NULL;
    cudaError_t e = cudaStreamEndCapture(st, &g);
    if (e != cudaSuccess || !g) {
        cispo_fail("graph_end_cuda: the capture failed: %s", cudaGetErrorString(e));
        cudaGetLastError();  // clear the sticky capture error so eager ops may follow
        if (g) cudaGraphDestroy(g);
        return NULL;
    }
    cudaGraphExec_t x = NULL;
    e = cudaGraphInstantiate(&x, g, 0);
    cudaGraphDestroy(g);
    if (e != cudaSuccess) {
        cispo_fail("graph_end_cuda: instantiate: %s", cudaGetErrorString(e));
        cudaGetLastError();
        return NULL;
    }
    return (void *)x;
}

extern "C" int graph_launch_cuda(void *graph, cudaStream_t st) {
    cudaError_t e = cudaGraphLaunch((cudaGraphExec_t)graph, st);
    return e == cudaSuccess ? 0 : cispo_fail("graph_launch_cuda: %s", cudaGetErrorString(e));
}

extern "C" void graph_free_cuda(void *graph) {
    if (graph) cudaGraphExecDestroy((cudaGraphExec_t)graph);
}
