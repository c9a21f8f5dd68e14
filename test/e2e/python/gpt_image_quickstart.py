# The GPT-image-1 tab of the Azure OpenAI "Generate images with the REST APIs" python quickstart,
# run for real against easel by test/e2e/python-quickstart.test.ts. Identical to the published
# script except: image.show() is removed (no display), and the test runs it in a temporary
# directory so the saved files land there.
import os
import requests
import base64
from PIL import Image
from io import BytesIO

# set environment variables
endpoint = os.getenv("AZURE_OPENAI_ENDPOINT")
subscription_key = os.getenv("AZURE_OPENAI_API_KEY")

deployment = "gpt-image-1" # the name of your GPT-image-1 deployment
api_version = "2025-04-01-preview" # or later version

def decode_and_save_image(b64_data, output_filename):
  image = Image.open(BytesIO(base64.b64decode(b64_data)))
  image.save(output_filename)

def save_all_images_from_response(response_data, filename_prefix):
  for idx, item in enumerate(response_data['data']):
    b64_img = item['b64_json']
    filename = f"{filename_prefix}_{idx+1}.png"
    decode_and_save_image(b64_img, filename)
    print(f"Image saved to: '{filename}'")

base_path = f'openai/deployments/{deployment}/images'
params = f'?api-version={api_version}'

generation_url = f"{endpoint}{base_path}/generations{params}"
generation_body = {
  "prompt": "girl falling asleep",
  "n": 1,
  "size": "1024x1024",
  "quality": "medium",
  "output_format": "png"
}
generation_response = requests.post(
  generation_url,
  headers={
    'Api-Key': subscription_key,
    'Content-Type': 'application/json',
  },
  json=generation_body
).json()
save_all_images_from_response(generation_response, "generated_image")

# In addition to generating images, you can edit them.
edit_url = f"{endpoint}{base_path}/edits{params}"
edit_body = {
  "prompt": "girl falling asleep",
  "n": 1,
  "size": "1024x1024",
  "quality": "medium"
}
files = {
  "image": ("generated_image_1.png", open("generated_image_1.png", "rb"), "image/png"),
  # You can use a mask to specify which parts of the image you want to edit.
  # The mask must be the same size as the input image.
  # "mask": ("mask.png", open("mask.png", "rb"), "image/png"),
}
edit_response = requests.post(
  edit_url,
  headers={'Api-Key': subscription_key},
  data=edit_body,
  files=files
).json()
save_all_images_from_response(edit_response, "edited_image")
