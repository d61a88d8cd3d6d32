func.func @main(%a: tensor<2xq32>) -> tensor<2xf32> {
  return %a : tensor<2xf32>
}
