module @jit_reduce_precision attributes {mhlo.num_partitions = 1 : i32, mhlo.num_replicas = 1 : i32} {
  func.func public @main(%arg0: tensor<32xf32>) -> (tensor<32xf32> {jax.result_info = "result[0]"}, tensor<32xf32> {jax.result_info = "result[1]"}, tensor<32xf32> {jax.result_info = "result[2]"}, tensor<32xf32> {jax.result_info = "result[3]"}, tensor<32xf32> {jax.result_info = "result[4]"}, tensor<32xf32> {jax.result_info = "result[5]"}) {
    %0 = stablehlo.reduce_precision %arg0, format = e5m10 : tensor<32xf32>
    %1 = stablehlo.reduce_precision %arg0, format = e8m7 : tensor<32xf32>
    %2 = stablehlo.reduce_precision %arg0, format = e4m3 : tensor<32xf32>
    %3 = stablehlo.reduce_precision %arg0, format = e5m2 : tensor<32xf32>
    %4 = stablehlo.reduce_precision %arg0, format = e3m0 : tensor<32xf32>
    %5 = stablehlo.convert %arg0 : (tensor<32xf32>) -> tensor<32xbf16>
    %6 = stablehlo.reduce_precision %5, format = e4m3 : tensor<32xbf16>
    %7 = stablehlo.convert %6 : (tensor<32xbf16>) -> tensor<32xf32>
    return %0, %1, %2, %3, %4, %7 : tensor<32xf32>, tensor<32xf32>, tensor<32xf32>, tensor<32xf32>, tensor<32xf32>, tensor<32xf32>
  }
}
