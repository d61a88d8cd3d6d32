module @ryft {
  func.func @main(%arg0: tensor<8x4xf32> {mhlo.sharding = "{devices=[2,1,2]0,2,1,3 last_tile_dim_replicate}"}, %arg1: tensor<8x4xf32> {mhlo.sharding = "{devices=[1,4]0,1,2,3}"}) -> (tensor<8x4xf32> {mhlo.sharding = "{devices=[2,1]0,1}"}) {
    %v3 = "stablehlo.custom_call"(%arg0) {call_target_name = "Sharding", mhlo.sharding = "{devices=[2,1,2]0,2,1,3 last_tile_dim_replicate}"} : (tensor<8x4xf32>) -> tensor<8x4xf32>
    %v4 = "stablehlo.custom_call"(%arg1) {call_target_name = "Sharding", mhlo.sharding = "{devices=[1,4]0,1,2,3}"} : (tensor<8x4xf32>) -> tensor<8x4xf32>
    %v5 = "stablehlo.add"(%v3, %v4) : (tensor<8x4xf32>, tensor<8x4xf32>) -> tensor<8x4xf32>
    %v6 = "stablehlo.custom_call"(%v5) {call_target_name = "Sharding", mhlo.sharding = "{devices=[2,2]0,1,2,3}"} : (tensor<8x4xf32>) -> tensor<8x4xf32>
    %v7 = "stablehlo.multiply"(%v6, %v6) : (tensor<8x4xf32>, tensor<8x4xf32>) -> tensor<8x4xf32>
    %v8 = "stablehlo.custom_call"(%v7) {call_target_name = "Sharding", mhlo.sharding = "{devices=[2,1]0,1}"} : (tensor<8x4xf32>) -> tensor<8x4xf32>
    "func.return"(%v8) : (tensor<8x4xf32>) -> ()
  }
}
