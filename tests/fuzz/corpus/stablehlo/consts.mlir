func.func @main() -> (tensor<2x2xbf16>, tensor<3xi1>, tensor<2xi8>) {
  %0 = stablehlo.constant dense<[[0x7F80, 1.5], [-0.0, 2.0]]> : tensor<2x2xbf16>
  %1 = stablehlo.constant dense<[true, false, true]> : tensor<3xi1>
  %2 = stablehlo.constant dense<"0x01FF"> : tensor<2xi8>
  return %0, %1, %2 : tensor<2x2xbf16>, tensor<3xi1>, tensor<2xi8>
}
